package aether.llm.gguf;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;

/**
 * Writes GGUF: header (metadata in the given order with the given types, tensor infos), padding, then each tensor's
 * data streamed from its {@link TensorSource} through a buffer of a few MiB, each followed by zero padding to the
 * alignment, as llama.cpp's {@code gguf_write_to_file} does. Tensor offsets are assigned in list order. Memory use is
 * the encoded header plus one buffer, whatever the size of the tensors.
 *
 * <p>The alignment is {@code general.alignment} from the metadata if present, else 32. Reading a file and writing
 * its metadata and tensors back with {@link Options#matching(GgufFile)} reproduces it byte for byte when its tensors
 * are laid out in header order with zero padding, as llama.cpp and gguf-py write them.
 */
public final class GgufWriter {

    private static final int CHUNK_BYTES = 4 << 20;

    /**
     * A tensor to write.
     *
     * @param shape ggml order ({@code shape[0]} is the row length), at most 4 dimensions
     */
    public record Tensor(String name, GgmlType type, long[] shape, TensorSource source) {
        public Tensor {
            Objects.requireNonNull(name);
            Objects.requireNonNull(type);
            Objects.requireNonNull(source);
            shape = shape.clone();
            if (source instanceof TensorSource.Segment(MemorySegment bytes) && bytes.byteSize() != type.bytesFor(shape)) {
                throw new IllegalArgumentException("tensor '%s': %s %s needs %,d bytes, the segment has %,d"
                        .formatted(name, type, Arrays.toString(shape), type.bytesFor(shape), bytes.byteSize()));
            }
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        long sizeBytes() {
            return type.bytesFor(shape);
        }
    }

    /**
     * Layout choices where writers differ.
     *
     * @param version                 GGUF version written (2 or 3; the little-endian layout is the same)
     * @param padHeaderWithoutTensors pad the header to the alignment even when there are no tensors (llama.cpp does;
     *                                older gguf-py vocab files do not)
     * @param padAfterLastTensor      pad after the last tensor too (llama.cpp and gguf-py do)
     */
    public record Options(int version, boolean padHeaderWithoutTensors, boolean padAfterLastTensor) {
        /** What llama.cpp writes. */
        public static final Options DEFAULT = new Options(3, true, true);

        public Options {
            if (version != 2 && version != 3) {
                throw new IllegalArgumentException("GGUF version %d, expected 2 or 3".formatted(version));
            }
        }

        /** The choices that reproduce {@code file}'s layout. */
        public static Options matching(GgufFile file) {
            long lastEnd = file.dataStart();
            for (TensorInfo t : file.tensors()) {
                lastEnd = Math.max(lastEnd, file.dataStart() + t.offset() + t.sizeBytes());
            }
            boolean headerPadded = file.sizeBytes() >= file.dataStart();
            return new Options(file.version(), file.tensors().isEmpty() ? headerPadded : true,
                    file.tensors().isEmpty() || file.sizeBytes() > lastEnd);
        }
    }

    private GgufWriter() {}

    /** The tensors of an open file as writer input, in header order, reading from its mapping. */
    public static List<Tensor> tensorsOf(GgufFile file) {
        var out = new ArrayList<Tensor>(file.tensors().size());
        for (TensorInfo t : file.tensors()) {
            out.add(new Tensor(t.name(), t.type(), t.shape(), TensorSource.of(file.tensorData(t))));
        }
        return out;
    }

    /** Writes (creating or replacing) {@code path} with {@link Options#DEFAULT}; returns the bytes written. */
    public static long write(Path path, GgufMetadata metadata, List<Tensor> tensors) throws IOException {
        return write(path, metadata, tensors, Options.DEFAULT);
    }

    /** Writes (creating or replacing) {@code path}; returns the bytes written. */
    public static long write(Path path, GgufMetadata metadata, List<Tensor> tensors, Options options)
            throws IOException {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            return write(channel, metadata, tensors, options);
        }
    }

    /**
     * Writes a whole GGUF file to {@code out}, which it does not close; returns the bytes written.
     *
     * @throws IllegalArgumentException for duplicate or over-long tensor names, more than 4 dimensions, shapes that
     *                                  are not whole blocks, or a {@code general.alignment} that is not a power of two
     */
    public static long write(WritableByteChannel out, GgufMetadata metadata, List<Tensor> tensors, Options options)
            throws IOException {
        int alignment = alignmentOf(metadata);
        validate(tensors);
        var header = new HeaderEncoder();
        header.u32(GgufReader.MAGIC);
        header.u32(options.version());
        header.u64(tensors.size());
        header.u64(metadata.size());
        for (var entry : metadata.asMap().entrySet()) {
            header.string(entry.getKey().getBytes(StandardCharsets.UTF_8));
            header.u32(entry.getValue().type().id());
            header.value(entry.getValue());
        }
        long offset = 0;
        for (Tensor t : tensors) {
            header.string(t.name().getBytes(StandardCharsets.UTF_8));
            header.u32(t.shape.length);
            for (long d : t.shape) {
                header.u64(d);
            }
            header.u32(t.type().id());
            header.u64(offset);
            offset = GgufReader.alignUp(offset + t.sizeBytes(), alignment);
        }
        if (!tensors.isEmpty() || options.padHeaderWithoutTensors()) {
            header.pad(alignment);
        }
        long written = header.writeTo(out);
        if (tensors.isEmpty()) {
            return written;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment chunk = arena.allocate(CHUNK_BYTES, 64);
            for (int i = 0; i < tensors.size(); i++) {
                Tensor t = tensors.get(i);
                long size = t.sizeBytes();
                written += streamData(out, t, size, chunk);
                boolean last = i == tensors.size() - 1;
                if (!last || options.padAfterLastTensor()) {
                    int padding = (int) (GgufReader.alignUp(size, alignment) - size);
                    written += writeFully(out, chunk.asSlice(0, padding).fill((byte) 0).asByteBuffer());
                }
            }
        }
        return written;
    }

    private static long streamData(WritableByteChannel out, Tensor t, long size, MemorySegment chunk) throws IOException {
        long written = 0;
        for (long at = 0; at < size; ) {
            long n = Math.min(CHUNK_BYTES, size - at);
            if (t.source() instanceof TensorSource.Segment(MemorySegment bytes) && viewableAsByteBuffer(bytes)) {
                written += writeFully(out, bytes.asSlice(at, n).asByteBuffer()); // straight from the mapping
            } else {
                MemorySegment window = chunk.asSlice(0, n);
                t.source().fill(at, window);
                written += writeFully(out, window.asByteBuffer());
            }
            at += n;
        }
        return written;
    }

    /** Off-heap and byte[] segments can be handed to a channel as they are; float[] or long[] ones cannot. */
    private static boolean viewableAsByteBuffer(MemorySegment segment) {
        return segment.isNative() || segment.heapBase().orElse(null) instanceof byte[];
    }

    private static long writeFully(WritableByteChannel out, ByteBuffer buffer) throws IOException {
        long n = buffer.remaining();
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
        return n;
    }

    private static int alignmentOf(GgufMetadata metadata) {
        var value = metadata.get(GgufMetadata.ALIGNMENT_KEY);
        if (value.isEmpty()) {
            return GgufMetadata.DEFAULT_ALIGNMENT;
        }
        if (value.get() instanceof MetadataValue.Int i && i.value() > 0 && i.value() <= (1 << 30)
                && Long.bitCount(i.value()) == 1) {
            return (int) i.value();
        }
        throw new IllegalArgumentException("general.alignment must be an integer power of two in 1..2^30, found %s %s"
                .formatted(value.get().type(), value.get()));
    }

    private static void validate(List<Tensor> tensors) {
        var names = new HashSet<String>();
        for (Tensor t : tensors) {
            int nameBytes = t.name().getBytes(StandardCharsets.UTF_8).length;
            if (nameBytes > GgufReader.MAX_NAME_BYTES) {
                throw new IllegalArgumentException("tensor '%s': name of %d bytes, at most %d allowed"
                        .formatted(t.name(), nameBytes, GgufReader.MAX_NAME_BYTES));
            }
            if (!names.add(t.name())) {
                throw new IllegalArgumentException("duplicate tensor name '" + t.name() + "'");
            }
            if (t.shape.length > GgufReader.MAX_DIMS) {
                throw new IllegalArgumentException("tensor '%s': %d dimensions, at most %d"
                        .formatted(t.name(), t.shape.length, GgufReader.MAX_DIMS));
            }
            t.sizeBytes(); // throws for negative dimensions, partial blocks and overflow
        }
    }

    /** The header, encoded little-endian into a growable heap buffer. */
    private static final class HeaderEncoder {
        private ByteBuffer buffer = ByteBuffer.allocate(64 << 10).order(ByteOrder.LITTLE_ENDIAN);

        private void ensure(long n) {
            if (buffer.remaining() < n) {
                long needed = buffer.position() + n;
                if (needed > Integer.MAX_VALUE - 8) {
                    throw new IllegalArgumentException("GGUF header of %,d bytes exceeds 2 GiB".formatted(needed));
                }
                int capacity = (int) Math.min(Integer.MAX_VALUE - 8, Math.max(needed, 2L * buffer.capacity()));
                ByteBuffer bigger = ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
                buffer.flip();
                bigger.put(buffer);
                buffer = bigger;
            }
        }

        void u8(int v) {
            ensure(1);
            buffer.put((byte) v);
        }

        void u16(int v) {
            ensure(2);
            buffer.putShort((short) v);
        }

        void u32(int v) {
            ensure(4);
            buffer.putInt(v);
        }

        void u64(long v) {
            ensure(8);
            buffer.putLong(v);
        }

        void string(byte[] utf8) {
            u64(utf8.length);
            bytes(MemorySegment.ofArray(utf8));
        }

        void bytes(MemorySegment segment) {
            ensure(segment.byteSize());
            MemorySegment.ofArray(buffer.array()).asSlice(buffer.position(), segment.byteSize()).copyFrom(segment);
            buffer.position(buffer.position() + (int) segment.byteSize());
        }

        void value(MetadataValue value) {
            switch (value) {
                case MetadataValue.Int i -> {
                    switch (i.type().sizeBytes()) {
                        case 1 -> u8((int) i.value());
                        case 2 -> u16((int) i.value());
                        case 4 -> u32((int) i.value());
                        default -> u64(i.value());
                    }
                }
                case MetadataValue.Float32 f -> u32(Float.floatToRawIntBits(f.value()));
                case MetadataValue.Float64 f -> u64(Double.doubleToRawLongBits(f.value()));
                case MetadataValue.Bool b -> u8(b.value() ? 1 : 0);
                case MetadataValue.Str s -> string(s.bytesUnsafe());
                case MetadataValue.Array a -> {
                    u32(a.array().elementType().id());
                    u64(a.array().size());
                    bytes(a.array().encodedElements()); // already GGUF-encoded, nested arrays included
                }
            }
        }

        void pad(int alignment) {
            long padded = GgufReader.alignUp(buffer.position(), alignment);
            while (buffer.position() < padded) {
                u8(0);
            }
        }

        long writeTo(WritableByteChannel out) throws IOException {
            buffer.flip();
            return writeFully(out, buffer);
        }
    }
}
