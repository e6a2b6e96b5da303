package aether.runtime.ir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.runtime.tensor.GgmlType;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Result types of ops, and errors that name the op, the operand types and the broken rule. */
class TypeInferenceTest {

    private static TensorType f32(int... dims) {
        return TensorType.of(DType.F32, dims);
    }

    private static TensorType infer(Op op, TensorType... in) {
        return TypeInference.infer(op, List.of(in));
    }

    @Test
    void matmulBroadcastsBatchDimensions() {
        assertThat(infer(new Op.MatMul(false), f32(2, 1, 3, 4), f32(5, 4, 6))).isEqualTo(f32(2, 5, 3, 6));
        assertThat(infer(new Op.MatMul(true), f32(7, 3, 4), f32(6, 4))).isEqualTo(f32(7, 3, 6));
    }

    @Test
    void matmulInnerDimensionMismatchNamesOpShapesAndRule() {
        assertThatThrownBy(() -> infer(new Op.MatMul(false), f32(2, 3), f32(4, 5)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("matmul(f32[2, 3], f32[4, 5]): inner dimensions must agree")
                .hasMessageContaining("(found 3 and 4)");
        assertThatThrownBy(() -> infer(new Op.MatMul(false), f32(2, 2, 3), f32(3, 3, 5)))
                .hasMessageContaining("batch dimensions");
    }

    @Test
    void quantizedWeightsAreTwoDimensionalWholeBlockRightOperands() {
        TensorType q8 = new TensorType(Shape.of(16, 64), DType.quantized(GgmlType.Q8_0));
        assertThat(infer(new Op.MatMul(true), f32(3, 64), q8)).isEqualTo(f32(3, 16));
        assertThat(infer(new Op.GetRows(), q8, TensorType.of(DType.I32, 5))).isEqualTo(f32(5, 64));
        TensorType ragged = new TensorType(Shape.of(16, 40), DType.quantized(GgmlType.Q4_0));
        assertThatThrownBy(() -> infer(new Op.MatMul(true), f32(3, 40), ragged))
                .hasMessageContaining("matmul_t(f32[3, 40], q4_0[16, 40])").hasMessageContaining("whole blocks of 32");
        assertThatThrownBy(() -> infer(new Op.MatMul(true), q8, f32(3, 64)))
                .hasMessageContaining("left operand of matmul is floating");
        assertThatThrownBy(() -> infer(new Op.Unary(Op.UnaryFn.EXP), q8)).hasMessageStartingWith("exp(q8_0[16, 64])");
        assertThatThrownBy(() -> infer(new Op.Reshape(Shape.of(1024)), q8)).hasMessageContaining("quantized");
    }

    @Test
    void elementwiseNeedsOneDtypeAndBroadcastableShapes() {
        assertThat(infer(new Op.Binary(Op.BinaryFn.MUL), f32(4, 1, 3), f32(2, 1))).isEqualTo(f32(4, 2, 3));
        assertThatThrownBy(() -> infer(new Op.Binary(Op.BinaryFn.SUB), f32(2, 3), f32(4)))
                .hasMessageStartingWith("sub(f32[2, 3], f32[4]): shapes must broadcast");
        assertThatThrownBy(() -> infer(new Op.Binary(Op.BinaryFn.ADD), f32(3), TensorType.of(DType.F16, 3)))
                .hasMessageStartingWith("add(f32[3], f16[3]): elementwise operands share one dtype");
        assertThatThrownBy(() -> infer(new Op.Unary(Op.UnaryFn.LOG), TensorType.of(DType.I32, 3)))
                .hasMessageStartingWith("log(i32[3])");
    }

    @Test
    void reductionsDropOrKeepTheAxisAndArgmaxIsI32() {
        assertThat(infer(new Op.Reduce(Op.ReduceFn.SUM, 1, false), f32(2, 3, 4))).isEqualTo(f32(2, 4));
        assertThat(infer(new Op.Reduce(Op.ReduceFn.MAX, 2, true), f32(2, 3, 4))).isEqualTo(f32(2, 3, 1));
        assertThat(infer(new Op.ArgMax(0, false), f32(5))).isEqualTo(TensorType.of(DType.I32));
        assertThatThrownBy(() -> infer(new Op.Reduce(Op.ReduceFn.MEAN, 3, false), f32(2, 3)))
                .hasMessageStartingWith("mean(f32[2, 3]): axis must be in 0..1 (found 3)");
    }

    @Test
    void softmaxMaskMustBroadcast() {
        assertThat(infer(new Op.Softmax(1, 0), f32(2, 3, 5), f32(3, 5))).isEqualTo(f32(2, 3, 5));
        assertThatThrownBy(() -> infer(new Op.Softmax(1, 0), f32(2, 3, 5), f32(4, 5)))
                .hasMessageStartingWith("softmax(f32[2, 3, 5], f32[4, 5]): the softmax mask must broadcast");
    }

    @Test
    void ropeChecksPositionsAndRotaryDims() {
        TensorType pos = TensorType.of(DType.I32, 4);
        assertThat(infer(new Op.Rope(Op.RopeMode.NEOX, 32, 1e4, 1), f32(4, 8, 64), pos)).isEqualTo(f32(4, 8, 64));
        assertThatThrownBy(() -> infer(new Op.Rope(Op.RopeMode.NORMAL, 64, 1e4, 1), f32(5, 8, 64), pos))
                .hasMessageContaining("one position per token: x has 5 tokens");
        assertThatThrownBy(() -> infer(new Op.Rope(Op.RopeMode.NORMAL, 65, 1e4, 1), f32(4, 8, 64), pos))
                .hasMessageContaining("even nRot in 2..headDim (64); found 65");
    }

    @Test
    void attentionChecksGroupsHeadSizesAndCausality() {
        assertThat(infer(new Op.Attention(0.125, 0, 0), f32(8, 3, 64), f32(2, 5, 64), f32(2, 5, 32)))
                .isEqualTo(f32(8, 3, 32));
        assertThatThrownBy(() -> infer(new Op.Attention(0.125, 0, 0), f32(6, 3, 64), f32(4, 5, 64), f32(4, 5, 64)))
                .hasMessageStartingWith("attention(f32[6, 3, 64], f32[4, 5, 64], f32[4, 5, 64])")
                .hasMessageContaining("hq a multiple of hkv");
        assertThatThrownBy(() -> infer(new Op.Attention(0.125, 0, 0), f32(2, 6, 8), f32(2, 5, 8), f32(2, 5, 8)))
                .hasMessageContaining("at least as many keys as queries");
    }

    @Test
    void layoutOpsKeepElementCountsAndCheckAxes() {
        assertThat(infer(new Op.Reshape(Shape.of(6, 2)), f32(3, 4))).isEqualTo(f32(6, 2));
        assertThatThrownBy(() -> infer(new Op.Reshape(Shape.of(5, 2)), f32(3, 4)))
                .hasMessageStartingWith("reshape(f32[3, 4]): reshape keeps the element count");
        assertThat(infer(new Op.Permute(List.of(2, 0, 1)), f32(2, 3, 4))).isEqualTo(f32(4, 2, 3));
        assertThatThrownBy(() -> infer(new Op.Permute(List.of(0, 0, 1)), f32(2, 3, 4)))
                .hasMessageContaining("must be a permutation of 0..2");
        assertThat(infer(new Op.Concat(1), f32(2, 3), f32(2, 5))).isEqualTo(f32(2, 8));
        assertThatThrownBy(() -> infer(new Op.Concat(1), f32(2, 3), f32(3, 5)))
                .hasMessageStartingWith("concat(f32[2, 3], f32[3, 5])");
        assertThat(infer(new Op.Slice(0, 1, 3), f32(4, 2))).isEqualTo(f32(2, 2));
        assertThatThrownBy(() -> infer(new Op.Slice(0, 1, 5), f32(4, 2))).hasMessageContaining("end=5");
        assertThat(infer(new Op.Expand(Shape.of(3, 2, 4)), f32(2, 1))).isEqualTo(f32(3, 2, 4));
        assertThatThrownBy(() -> infer(new Op.Expand(Shape.of(3, 4)), f32(2, 1))).hasMessageContaining("broadcast");
    }

    @Test
    void getRowsAppendsTheRowLengthToTheIdsShape() {
        assertThat(infer(new Op.GetRows(), f32(10, 4), TensorType.of(DType.I32, 2, 3))).isEqualTo(f32(2, 3, 4));
        assertThatThrownBy(() -> infer(new Op.GetRows(), f32(10, 4), f32(3))).hasMessageContaining("ids are I32");
    }

    @Test
    void quantizedLeavesAreWholeBlockMatrices() {
        DType q40 = DType.quantized(GgmlType.Q4_0);
        assertThat(infer(new Op.Input("w", new TensorType(Shape.of(3, 64), q40)))).isEqualTo(
                new TensorType(Shape.of(3, 64), q40));
        assertThatThrownBy(() -> infer(new Op.Input("w", new TensorType(Shape.of(3, 4, 64), q40))))
                .hasMessageStartingWith("input(): a q4_0 input is a 2-D weight");
        assertThatThrownBy(() -> infer(new Op.Input("w", new TensorType(Shape.of(3, 48), q40))))
                .hasMessageContaining("whole blocks of 32");
        assertThatThrownBy(() -> infer(new Op.Full(0, new TensorType(Shape.of(32), q40))))
                .hasMessageContaining("full has a floating or integer dtype");
    }

    @Test
    void castConvertsOnlyBetweenFloatingTypes() {
        assertThat(infer(new Op.Cast(DType.BF16), f32(3))).isEqualTo(TensorType.of(DType.BF16, 3));
        assertThatThrownBy(() -> infer(new Op.Cast(DType.I32), f32(3))).hasMessageStartingWith("cast(f32[3])");
    }
}
