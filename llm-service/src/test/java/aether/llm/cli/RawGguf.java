package aether.llm.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A deliberately naive GGUF scan for test expectations, sharing no code with {@code aether.llm.gguf}: scalar values
 * (integers as Long, strings), array lengths, the first strings of string arrays, and tensor names.
 */
record RawGguf(Map<String, Object> scalars, Map<String, Long> arrayLengths, Map<String, List<String>> stringArrays,
               List<String> tensorNames, long dataStart) {

    static RawGguf read(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        b.position(8);
        long tensors = b.getLong();
        long kvs = b.getLong();
        var scalars = new LinkedHashMap<String, Object>();
        var lengths = new LinkedHashMap<String, Long>();
        var strings = new LinkedHashMap<String, List<String>>();
        for (long i = 0; i < kvs; i++) {
            String key = string(b);
            int type = b.getInt();
            if (type == 9) {
                int elementType = b.getInt();
                long n = b.getLong();
                lengths.put(key, n);
                var list = new ArrayList<String>();
                for (long k = 0; k < n; k++) {
                    Object v = scalar(b, elementType);
                    if (v instanceof String s) {
                        list.add(s);
                    }
                }
                if (elementType == 8) {
                    strings.put(key, list);
                }
            } else {
                scalars.put(key, scalar(b, type));
            }
        }
        var names = new ArrayList<String>();
        for (long i = 0; i < tensors; i++) {
            names.add(string(b));
            int dims = b.getInt();
            b.position(b.position() + 8 * dims + 4 + 8);
        }
        long alignment = scalars.get("general.alignment") instanceof Long a ? a : 32;
        long dataStart = (b.position() + alignment - 1) / alignment * alignment;
        return new RawGguf(scalars, lengths, strings, names, dataStart);
    }

    private static String string(ByteBuffer b) {
        int n = (int) b.getLong();
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static Object scalar(ByteBuffer b, int type) {
        return switch (type) {
            case 0 -> (long) Byte.toUnsignedInt(b.get());
            case 1 -> (long) b.get();
            case 2 -> (long) Short.toUnsignedInt(b.getShort());
            case 3 -> (long) b.getShort();
            case 4 -> Integer.toUnsignedLong(b.getInt());
            case 5 -> (long) b.getInt();
            case 6 -> (double) b.getFloat();
            case 7 -> b.get() != 0;
            case 8 -> string(b);
            case 10, 11 -> b.getLong();
            case 12 -> b.getDouble();
            default -> throw new IllegalStateException("type " + type + " not expected in these test files");
        };
    }
}
