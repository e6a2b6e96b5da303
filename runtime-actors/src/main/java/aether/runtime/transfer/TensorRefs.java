package aether.runtime.transfer;

import aether.runtime.exchange.TensorDescriptor;
import aether.runtime.ir.Shape;
import aether.runtime.protocol.TensorRef;
import java.util.ArrayList;
import java.util.List;

/** Between the job protocol's {@link TensorRef} (NumPy-order shape, buffer id) and the exchange's descriptor. */
public final class TensorRefs {

    private TensorRefs() {}

    /**
     * The descriptor of {@code ref}'s bytes: tensor id = buffer id, same version, ggml type and shape in ggml order
     * (the contiguous dimension first), located at {@code ref.nodeId()}.
     */
    public static TensorDescriptor descriptor(TensorRef ref) {
        Shape shape = ref.type().shape();
        List<Long> ggmlOrder = new ArrayList<>(shape.rank());
        for (int i = shape.rank() - 1; i >= 0; i--) {
            ggmlOrder.add((long) shape.dim(i));
        }
        return TensorDescriptor.of(ref.id().value(), ref.version(), ref.type().dtype().ggml(), ggmlOrder,
                TensorDescriptor.Location.local(ref.nodeId()));
    }
}
