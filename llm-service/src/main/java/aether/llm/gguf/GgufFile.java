package aether.llm.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * An open, validated GGUF file (version 2 or 3). {@link #open(Path)} maps the whole file read-only, checks the header
 * completely (see {@link GgufFormatException} for what is rejected) and then gives tensor data as slices of the
 * mapping: nothing is copied, and files beyond 2 GiB work because every offset is a long.
 *
 * <p>Closing unmaps the file: tensor slices and metadata arrays read from it must not be used afterwards (they throw
 * {@link IllegalStateException}). Reads are thread-safe; {@link #close()} must not race with them.
 */
public final class GgufFile implements AutoCloseable {

    private static final long DIGEST_CHUNK_BYTES = 64L << 20;

    private final Path path;
    private final MemorySegment mapping;
    private final Arena arena;
    private final GgufReader.Header header;
    private final Map<String, TensorInfo> tensorsByName;

    private GgufFile(Path path, MemorySegment mapping, Arena arena, GgufReader.Header header) {
        this.path = path;
        this.mapping = mapping;
        this.arena = arena;
        this.header = header;
        var byName = new LinkedHashMap<String, TensorInfo>();
        for (TensorInfo t : header.tensors()) {
            byName.put(t.name(), t);
        }
        this.tensorsByName = byName;
    }

    /**
     * Maps and validates {@code path}.
     *
     * @throws GgufFormatException if the file is not valid GGUF
     * @throws IOException         if it cannot be opened or mapped
     */
    public static GgufFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
            return new GgufFile(path, mapping, arena, GgufReader.read(path, mapping));
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Validates GGUF bytes already in memory (tests, fuzzing, downloads). {@code name} is only reported in errors; the
     * caller keeps owning {@code contents}, and {@link #close()} leaves it alone.
     */
    public static GgufFile read(Path name, MemorySegment contents) {
        return new GgufFile(name, contents, null, GgufReader.read(name, contents));
    }

    public Path path() {
        return path;
    }

    /** 2 or 3 (they differ only in big-endian support, which this reader does not have). */
    public int version() {
        return header.version();
    }

    public long sizeBytes() {
        return mapping.byteSize();
    }

    public GgufMetadata metadata() {
        return header.metadata();
    }

    /** Tensor infos in header order. */
    public List<TensorInfo> tensors() {
        return header.tensors();
    }

    public Optional<TensorInfo> tensor(String name) {
        return Optional.ofNullable(tensorsByName.get(name));
    }

    /** {@code general.alignment}, or 32. */
    public int alignment() {
        return header.alignment();
    }

    /** Bytes of the header: magic through the last tensor info, without padding. */
    public long headerBytes() {
        return header.headerEnd();
    }

    /** Offset of the data section: the header end rounded up to the alignment (may exceed the size of a tensor-less file). */
    public long dataStart() {
        return header.dataStart();
    }

    /** The data section, from {@link #dataStart()} to the end of the file (empty if the file ends before it). */
    public MemorySegment dataSection() {
        long start = Math.min(header.dataStart(), mapping.byteSize());
        return mapping.asSlice(start);
    }

    /** The tensor's bytes: a read-only view of the mapping. */
    public MemorySegment tensorData(TensorInfo tensor) {
        TensorInfo own = tensorsByName.get(tensor.name());
        if (!tensor.equals(own)) {
            throw new IllegalArgumentException("tensor " + tensor + " is not from " + path);
        }
        return mapping.asSlice(header.dataStart() + tensor.offset(), tensor.sizeBytes());
    }

    /** The named tensor's bytes, or {@link IllegalArgumentException} naming the file if there is none. */
    public MemorySegment tensorData(String name) {
        TensorInfo t = tensorsByName.get(name);
        if (t == null) {
            throw new IllegalArgumentException("%s has no tensor '%s'".formatted(path.getFileName(), name));
        }
        return tensorData(t);
    }

    /** The whole file as mapped. */
    public MemorySegment contents() {
        return mapping;
    }

    /** SHA-256 of the data section as lowercase hex; reads every byte of it (touching every page of the file). */
    public String dataSha256() {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK always has SHA-256", e);
        }
        MemorySegment data = dataSection();
        for (long at = 0; at < data.byteSize(); at += DIGEST_CHUNK_BYTES) {
            long n = Math.min(DIGEST_CHUNK_BYTES, data.byteSize() - at);
            digest.update(data.asSlice(at, n).asByteBuffer());
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /** Unmaps a file opened with {@link #open(Path)}; does nothing for {@link #read(Path, MemorySegment)}. */
    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) {
            arena.close();
        }
    }
}
