package aether.llm.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Files beyond 2 GiB, kept sparse so the test writes only a few KiB to disk. */
class GgufLargeFileTest {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long TWO_GIB = 1L << 31;

    @TempDir
    Path temp;

    @Test
    @Timeout(120)
    void shouldReadATensorLyingPast2GiB() throws IOException {
        var header = GgufBytes.header(3, 2, 1).kvString("general.architecture", "sparse")
                .tensor("filler", GgmlType.F32.id(), 0, TWO_GIB / 4)
                .tensor("tail", GgmlType.F32.id(), TWO_GIB, 16)
                .pad(32);
        long dataStart = header.size();
        Path file = temp.resolve("sparse.gguf");
        try (var raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(dataStart + TWO_GIB + 64);
            raf.write(header.bytes());
            raf.seek(dataStart + TWO_GIB);
            ByteBuffer tail = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 16; i++) {
                tail.putFloat(i + 0.25f);
            }
            raf.write(tail.array());
        }
        try (GgufFile f = GgufFile.open(file)) {
            assertThat(f.sizeBytes()).isGreaterThan(TWO_GIB);
            TensorInfo tail = f.tensor("tail").orElseThrow();
            assertThat(f.dataStart() + tail.offset()).isGreaterThan(TWO_GIB);
            MemorySegment data = f.tensorData(tail);
            assertThat(data.getAtIndex(F32, 15)).isEqualTo(15.25f);
            assertThat(f.tensorData("filler").byteSize()).isEqualTo(TWO_GIB);
            assertThat(f.contents().getAtIndex(F32, (f.dataStart() + tail.offset()) / 4 + 3)).isEqualTo(3.25f);
        }
    }

    @Test
    @Timeout(180)
    void shouldStreamMoreThan2GiBThroughTheWriterInSmallWindows() throws IOException {
        long fillerBytes = TWO_GIB + (1 << 20);
        var windows = new long[] {0, 0}; // next expected offset, largest window
        TensorSource zeros = (offset, window) -> {
            assertThat(offset).isEqualTo(windows[0]);
            windows[0] += window.byteSize();
            windows[1] = Math.max(windows[1], window.byteSize());
            window.fill((byte) 0);
        };
        float[] tailValues = new float[32];
        for (int i = 0; i < tailValues.length; i++) {
            tailValues[i] = -i;
        }
        GgufMetadata md = GgufMetadata.builder().putString("general.architecture", "sparse")
                .putUInt32("general.alignment", 64).build();
        var tensors = List.of(
                new GgufWriter.Tensor("filler", GgmlType.I8, new long[] {fillerBytes}, zeros),
                new GgufWriter.Tensor("tail", GgmlType.F32, new long[] {32}, TensorSource.of(MemorySegment.ofArray(tailValues))));
        Path file = temp.resolve("written.gguf");
        long written;
        try (var out = new SparseChannel(file)) {
            written = GgufWriter.write(out, md, tensors, GgufWriter.Options.DEFAULT);
        }
        assertThat(windows[0]).isEqualTo(fillerBytes);
        assertThat(windows[1]).isLessThanOrEqualTo(8L << 20);
        try (GgufFile f = GgufFile.open(file)) {
            assertThat(f.sizeBytes()).isEqualTo(written);
            assertThat(f.alignment()).isEqualTo(64);
            TensorInfo tail = f.tensor("tail").orElseThrow();
            assertThat(tail.offset()).isEqualTo(fillerBytes);
            assertThat(f.dataStart() % 64).isZero();
            assertThat(f.tensorData(tail).toArray(F32)).containsExactly(tailValues);
        }
    }

    /** Writes non-zero buffers where they belong and skips all-zero ones, leaving holes: a sparse file. */
    private static final class SparseChannel implements WritableByteChannel {
        private final FileChannel file;
        private long position;

        SparseChannel(Path path) throws IOException {
            file = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            int n = src.remaining();
            MemorySegment bytes = MemorySegment.ofBuffer(src);
            try (Arena arena = Arena.ofConfined()) {
                if (bytes.mismatch(arena.allocate(n)) < 0) {
                    src.position(src.limit());
                } else {
                    while (src.hasRemaining()) {
                        file.write(src, position + (n - src.remaining()));
                    }
                }
            }
            position += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return file.isOpen();
        }

        @Override
        public void close() throws IOException {
            if (file.size() < position) {
                file.write(ByteBuffer.allocate(1), position - 1);
            }
            file.close();
        }
    }
}
