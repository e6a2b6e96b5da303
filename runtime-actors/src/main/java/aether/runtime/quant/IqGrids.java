package aether.runtime.quant;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The lookup tables of ggml-common.h that the grid-based IQ formats decode through. Each grid entry is 8 (IQ2 /
 * IQ1) or 4 (IQ3) bytes, stored here flat in entry order, byte {@code j} of entry {@code i} at {@code [w*i + j]}
 * (the little-endian byte order of ggml's {@code uint64_t} / {@code uint32_t} entries).
 *
 * <p>The grids are loaded once from the resource {@code iq-grids.bin}: {@code iq2xxs_grid} (256 x 8), {@code
 * iq2xs_grid} (512 x 8), {@code iq2s_grid} (1024 x 8), {@code iq1s_grid} (2048 x 8, signed), {@code
 * iq3xxs_grid} (256 x 4), {@code iq3s_grid} (512 x 4), 33,792 bytes. scripts/ggml_iq_reference.py produced it
 * from llama.cpp's own dequantization; IqGridsTest checks it against entries of ggml-common.h.
 */
final class IqGrids {

    /** {@code iq2xxs_grid}: 256 entries of 8 magnitudes from {8, 25, 43}. */
    static final byte[] IQ2XXS = new byte[256 * 8];
    /** {@code iq2xs_grid}: 512 entries of 8 magnitudes from {8, 25, 43}. */
    static final byte[] IQ2XS = new byte[512 * 8];
    /** {@code iq2s_grid}: 1024 entries of 8 magnitudes from {8, 25, 43, 62}. */
    static final byte[] IQ2S = new byte[1024 * 8];
    /** {@code iq1s_grid}: 2048 entries of 8 signed values from {-1, 0, 1}. */
    static final byte[] IQ1S = new byte[2048 * 8];
    /** {@code iq3xxs_grid}: 256 entries of 4 magnitudes from {4, 12, ..., 52, 62}. */
    static final byte[] IQ3XXS = new byte[256 * 4];
    /** {@code iq3s_grid}: 512 entries of 4 odd magnitudes 1..15. */
    static final byte[] IQ3S = new byte[512 * 4];

    /** {@code ksigns_iq2xs}: 7 sign bits plus an eighth that makes the number of set bits even. */
    static final byte[] KSIGNS_IQ2XS = {
        0, (byte) 129, (byte) 130, 3, (byte) 132, 5, 6, (byte) 135, (byte) 136, 9, 10, (byte) 139, 12, (byte) 141,
        (byte) 142, 15, (byte) 144, 17, 18, (byte) 147, 20, (byte) 149, (byte) 150, 23, 24, (byte) 153, (byte) 154,
        27, (byte) 156, 29, 30, (byte) 159, (byte) 160, 33, 34, (byte) 163, 36, (byte) 165, (byte) 166, 39, 40,
        (byte) 169, (byte) 170, 43, (byte) 172, 45, 46, (byte) 175, 48, (byte) 177, (byte) 178, 51, (byte) 180, 53,
        54, (byte) 183, (byte) 184, 57, 58, (byte) 187, 60, (byte) 189, (byte) 190, 63, (byte) 192, 65, 66,
        (byte) 195, 68, (byte) 197, (byte) 198, 71, 72, (byte) 201, (byte) 202, 75, (byte) 204, 77, 78, (byte) 207,
        80, (byte) 209, (byte) 210, 83, (byte) 212, 85, 86, (byte) 215, (byte) 216, 89, 90, (byte) 219, 92,
        (byte) 221, (byte) 222, 95, 96, (byte) 225, (byte) 226, 99, (byte) 228, 101, 102, (byte) 231, (byte) 232,
        105, 106, (byte) 235, 108, (byte) 237, (byte) 238, 111, (byte) 240, 113, 114, (byte) 243, 116, (byte) 245,
        (byte) 246, 119, 120, (byte) 249, (byte) 250, 123, (byte) 252, 125, 126, (byte) 255,
    };

    /** {@code IQ1S_DELTA} (and {@code IQ1M_DELTA}): the shift added to IQ1 grid values. */
    static final float IQ1S_DELTA = 0.125f;

    private static final String RESOURCE = "iq-grids.bin";

    static {
        try (InputStream in = IqGrids.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource aether/runtime/quant/" + RESOURCE + " is missing");
            }
            for (byte[] table : new byte[][] {IQ2XXS, IQ2XS, IQ2S, IQ1S, IQ3XXS, IQ3S}) {
                int n = in.readNBytes(table, 0, table.length);
                if (n != table.length) {
                    throw new IllegalStateException("resource " + RESOURCE + " is truncated: expected 33,792 bytes");
                }
            }
            if (in.read() != -1) {
                throw new IllegalStateException("resource " + RESOURCE + " is longer than 33,792 bytes");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read resource " + RESOURCE, e);
        }
    }

    private IqGrids() {}

    /** The sign (+1 or -1) of element {@code j} (0..7) under sign byte {@code signs}: ggml's kmask_iq2xs test. */
    static float sign(int signs, int j) {
        // Branch-free: sign bits are random in real weights, and a mispredicted branch per element made the IQ2/IQ3
        // decoders ~10x slower than their arithmetic.
        return 1 - (((signs >>> j) & 1) << 1);
    }
}
