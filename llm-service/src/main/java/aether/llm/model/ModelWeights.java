package aether.llm.model;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.TensorInfo;
import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.quant.UnsupportedTypeException;
import aether.runtime.tensor.GgmlType;
import aether.scheduler.exec.CodecWeightRows;
import aether.scheduler.exec.WeightRows;
import java.util.Arrays;
import java.util.Optional;

/**
 * The tensors of an open GGUF file, looked up by name with their expected shapes. Matrices stay in the mapped file in
 * their storage type ({@link WeightRows} over a slice of the mapping, any ggml block type); 1-D tensors (norm weights,
 * biases, RoPE factors) are small and come back as float arrays. Every lookup checks presence, rank, shape and that this
 * build can decode the type, and fails with a {@link ModelLoadException} naming the tensor. Architectures call this
 * once, at load; the views are valid while the {@link GgufFile} stays open. Thread-safe.
 */
public final class ModelWeights {

    private final GgufFile file;
    private final String architecture;

    public ModelWeights(GgufFile file, String architecture) {
        this.file = file;
        this.architecture = architecture;
    }

    public String architecture() {
        return architecture;
    }

    public boolean contains(String name) {
        return file.tensor(name).isPresent();
    }

    /** Matrix {@code name} with {@code rows} rows of {@code cols} elements (ggml ne = [cols, rows]). */
    public WeightRows matrix(String name, int rows, int cols) {
        return optionalMatrix(name, rows, cols).orElseThrow(() -> missing(name, "[" + rows + ", " + cols + "]"));
    }

    public Optional<WeightRows> optionalMatrix(String name, int rows, int cols) {
        Optional<TensorInfo> found = file.tensor(name);
        if (found.isEmpty()) {
            return Optional.empty();
        }
        TensorInfo t = found.get();
        long[] ne = t.shape();
        boolean ok = ne.length == 2 && ne[0] == cols && ne[1] == rows;
        if (!ok) {
            throw new ModelLoadException(architecture, "tensor '" + name + "' has ne " + Arrays.toString(ne)
                    + ", expected ne [" + cols + ", " + rows + "] (" + rows + " rows of " + cols + ")");
        }
        return Optional.of(new CodecWeightRows(codec(t), file.tensorData(t), rows, cols));
    }

    /** 1-D tensor {@code name} of {@code length} elements, as floats. */
    public float[] vector(String name, int length) {
        return optionalVector(name, length).orElseThrow(() -> missing(name, "[" + length + "]"));
    }

    public Optional<float[]> optionalVector(String name, int length) {
        Optional<TensorInfo> found = file.tensor(name);
        if (found.isEmpty()) {
            return Optional.empty();
        }
        TensorInfo t = found.get();
        if (t.rank() != 1 || t.dim(0) != length) {
            throw new ModelLoadException(architecture, "tensor '" + name + "' has ne " + Arrays.toString(t.shape())
                    + ", expected ne [" + length + "]");
        }
        codec(t);
        return Optional.of(BlockCodecs.dequantize(t.type(), file.tensorData(t), 0, length));
    }

    private BlockCodec codec(TensorInfo t) {
        try {
            BlockCodec codec = BlockCodecs.require(t.type());
            if (t.type() == GgmlType.I8 || t.type() == GgmlType.I16 || t.type() == GgmlType.I32
                    || t.type() == GgmlType.I64 || t.type() == GgmlType.F64) {
                throw new UnsupportedTypeException(t.type());
            }
            return codec;
        } catch (UnsupportedTypeException e) {
            throw new ModelLoadException(architecture, "tensor '" + t.name() + "' is stored as " + t.type()
                    + ", which this build cannot use as a weight (" + e.getMessage() + ")");
        }
    }

    private ModelLoadException missing(String name, String shape) {
        return new ModelLoadException(architecture, "tensor '" + name + "' " + shape
                + " is missing from the model file (" + file.path().getFileName() + ")");
    }
}
