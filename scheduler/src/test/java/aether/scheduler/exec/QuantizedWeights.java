package aether.scheduler.exec;

import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.lang.foreign.MemorySegment;

/** Test helper: a [rows, cols] f32 matrix quantized with the real codec library into block-backed weight rows. */
final class QuantizedWeights {

    private QuantizedWeights() {}

    static CodecWeightRows of(GgmlType type, float[] values, int rows, int cols) {
        BlockCodec codec = BlockCodecs.require(type);
        MemorySegment s = MemorySegment.ofArray(new byte[(int) type.bytesFor((long) rows * cols)]);
        codec.quantize(values, 0, values.length, s, 0);
        return new CodecWeightRows(codec, s, rows, cols);
    }
}
