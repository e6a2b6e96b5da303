package aether.runtime.quant;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

/** Test helpers: the codecs of this branch by type, and little-endian resource readers. */
final class IqCodecs {

    static final List<BlockCodec> ALL = List.of(new IQ4_NLCodec(), new IQ4_XSCodec(), new TQ1_0Codec(),
            new TQ2_0Codec(), new MXFP4Codec(), new IQ2_XXSCodec(), new IQ2_XSCodec(), new IQ2_SCodec(),
            new IQ3_XXSCodec(), new IQ3_SCodec(), new IQ1_SCodec(), new IQ1_MCodec());

    static final Map<GgmlType, BlockCodec> BY_TYPE = byType();

    private IqCodecs() {}

    private static Map<GgmlType, BlockCodec> byType() {
        var map = new java.util.EnumMap<GgmlType, BlockCodec>(GgmlType.class);
        for (BlockCodec c : ALL) {
            map.put(c.type(), c);
        }
        return map;
    }

    static byte[] resource(String name) {
        try (InputStream in = IqCodecs.class.getResourceAsStream("ggml-ref/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource ggml-ref/" + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float[] floats(byte[] bytes) {
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    static byte[] bytes(MemorySegment s) {
        return s.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    /** The first index where the raw float bits differ, or -1. */
    static int firstBitDifference(float[] expected, float[] actual) {
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                return i;
            }
        }
        return -1;
    }
}
