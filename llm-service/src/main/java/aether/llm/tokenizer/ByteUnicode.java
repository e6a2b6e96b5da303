package aether.llm.tokenizer;

import java.util.Arrays;

/**
 * GPT-2's reversible byte-to-character mapping: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order, so every byte sequence becomes printable text without spaces (space is {@code Ġ}, U+0120).
 */
final class ByteUnicode {

    private static final int[] BYTE_TO_CP = new int[256];
    /** Code point to byte, -1 where the code point is not an image of a byte; covers U+0000..U+01FF. */
    private static final int[] CP_TO_BYTE = new int[512];
    /** UTF-8 encoding of each byte's image. */
    private static final byte[][] BYTE_TO_UTF8 = new byte[256][];

    static {
        Arrays.fill(BYTE_TO_CP, -1);
        for (int b = 0; b < 256; b++) {
            if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
                BYTE_TO_CP[b] = b;
            }
        }
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (BYTE_TO_CP[b] < 0) {
                BYTE_TO_CP[b] = 256 + n++;
            }
        }
        Arrays.fill(CP_TO_BYTE, -1);
        for (int b = 0; b < 256; b++) {
            CP_TO_BYTE[BYTE_TO_CP[b]] = b;
            byte[] utf8 = new byte[2];
            int len = Unicode.putUtf8(utf8, 0, BYTE_TO_CP[b]);
            BYTE_TO_UTF8[b] = Arrays.copyOf(utf8, len);
        }
    }

    private ByteUnicode() {}

    /** The UTF-8 bytes of the character that stands for byte {@code b}; shared, do not modify. */
    static byte[] encode(int b) {
        return BYTE_TO_UTF8[b & 0xFF];
    }

    /** The byte that code point {@code cp} stands for, or -1. */
    static int decode(int cp) {
        return cp >= 0 && cp < CP_TO_BYTE.length ? CP_TO_BYTE[cp] : -1;
    }
}
