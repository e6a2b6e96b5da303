package aether.device.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Method;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;

/**
 * Kernel launches with programmatic dependent launch (PDL, Hopper): {@code cuLaunchKernelEx} with the attribute
 * {@code CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION}, called through {@code java.lang.foreign} because
 * JCuda 12.6 has no binding for it. A kernel launched this way may be scheduled while the one before it in the stream
 * still runs; our kernels all begin with {@code pdl_entry()} (pdl.cuh), which waits for the predecessor's completion
 * before touching memory and then lets the successor launch. A decode step is ~260 small kernels in a CUDA graph, and
 * stream capture keeps these programmatic edges, so each boundary loses less time to launch and ramp-up.
 *
 * <p>The JCuda handles' raw values (function, stream, device pointers) are read through method handles on
 * {@link NativePointerObject}'s protected accessors (opened once by reflection).
 */
final class ProgrammaticLaunch {

    /** {@code CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION} of cuda.h. */
    private static final int ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
    /** sizeof(CUlaunchConfig): 7 unsigned ints, pad, stream, attrs pointer, unsigned numAttrs, pad. */
    private static final long CONFIG_BYTES = 56;
    /** sizeof(CUlaunchAttribute): id, pad to 8, a 64-byte value union. */
    private static final long ATTRIBUTE_BYTES = 72;

    private static final MethodHandle LAUNCH;
    /** JCuda's protected accessors, as method handles ((NativePointerObject)long, (Pointer)long): once per argument. */
    private static final MethodHandle NATIVE_POINTER;
    private static final MethodHandle BYTE_OFFSET;
    private static final String UNAVAILABLE;

    static {
        MethodHandle launch = null, nativePointer = null, byteOffset = null;
        String why = null;
        try {   // JCuda's accessors first: they need no driver (and ProgrammaticLaunchTest checks them without one)
            Method np = NativePointerObject.class.getDeclaredMethod("getNativePointer");
            np.setAccessible(true);
            Method bo = Pointer.class.getDeclaredMethod("getByteOffset");
            bo.setAccessible(true);
            nativePointer = MethodHandles.lookup().unreflect(np)
                    .asType(MethodType.methodType(long.class, NativePointerObject.class));
            byteOffset = MethodHandles.lookup().unreflect(bo).asType(MethodType.methodType(long.class, Pointer.class));
            SymbolLookup cuda = SymbolLookup.libraryLookup("libcuda.so.1", Arena.global());
            MemorySegment symbol = cuda.find("cuLaunchKernelEx")
                    .orElseThrow(() -> new IllegalStateException("libcuda.so.1 has no cuLaunchKernelEx"));
            launch = Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        } catch (Throwable t) {
            why = t.getClass().getSimpleName() + ": " + t.getMessage();
            launch = null;
        }
        LAUNCH = launch;
        NATIVE_POINTER = nativePointer;
        BYTE_OFFSET = byteOffset;
        UNAVAILABLE = why;
    }

    private ProgrammaticLaunch() {}

    /** Null when launches with PDL can be made here, else why not. */
    static String unavailable() {
        return UNAVAILABLE;
    }

    /**
     * Launches {@code f} on {@code stream} with programmatic stream serialization. Arguments as
     * {@link CudaContext#launch3}: {@link CUdeviceptr} (null = a null pointer), Integer, Long, Float.
     *
     * @return the driver's result code
     */
    static int launch(CUfunction f, CUstream stream, int gridX, int gridY, int gridZ, int blockX, int sharedBytes,
            Object[] args, String kernel) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment values = arena.allocate(8L * Math.max(1, args.length), 8);
            MemorySegment params = arena.allocate(8L * Math.max(1, args.length), 8);
            for (int i = 0; i < args.length; i++) {
                MemorySegment slot = values.asSlice(8L * i, 8);
                switch (args[i]) {
                    case null -> slot.set(ValueLayout.JAVA_LONG, 0, 0L);
                    case CUdeviceptr p -> slot.set(ValueLayout.JAVA_LONG, 0, address(p));
                    case Integer v -> slot.set(ValueLayout.JAVA_INT, 0, v);
                    case Long v -> slot.set(ValueLayout.JAVA_LONG, 0, v);
                    case Float v -> slot.set(ValueLayout.JAVA_FLOAT, 0, v);
                    default -> throw new IllegalArgumentException("kernel " + kernel + " argument " + i + ": "
                            + args[i].getClass().getSimpleName() + " (expected CUdeviceptr, Integer, Long or Float)");
                }
                params.setAtIndex(ValueLayout.ADDRESS, i, slot);
            }
            MemorySegment attribute = arena.allocate(ATTRIBUTE_BYTES, 8);
            attribute.set(ValueLayout.JAVA_INT, 0, ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
            attribute.set(ValueLayout.JAVA_INT, 8, 1);   // value.programmaticStreamSerializationAllowed
            MemorySegment config = arena.allocate(CONFIG_BYTES, 8);
            config.set(ValueLayout.JAVA_INT, 0, gridX);
            config.set(ValueLayout.JAVA_INT, 4, gridY);
            config.set(ValueLayout.JAVA_INT, 8, gridZ);
            config.set(ValueLayout.JAVA_INT, 12, blockX);
            config.set(ValueLayout.JAVA_INT, 16, 1);
            config.set(ValueLayout.JAVA_INT, 20, 1);
            config.set(ValueLayout.JAVA_INT, 24, sharedBytes);
            config.set(ValueLayout.JAVA_LONG, 32, handle(stream));
            config.set(ValueLayout.ADDRESS, 40, attribute);
            config.set(ValueLayout.JAVA_INT, 48, 1);
            return (int) LAUNCH.invokeExact(config, handle(f), params, MemorySegment.NULL);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new CudaException("cuLaunchKernelEx(" + kernel + "): " + t, 0);
        }
    }

    /** A device pointer's address: JCuda's base pointer plus the offset of {@link Pointer#withByteOffset}. */
    static long address(CUdeviceptr p) {
        try {
            return handle(p) + (long) BYTE_OFFSET.invokeExact((Pointer) p);
        } catch (Throwable t) {
            throw new IllegalStateException("JCuda pointer offset: " + t, t);
        }
    }

    private static long handle(NativePointerObject o) {
        try {
            return (long) NATIVE_POINTER.invokeExact(o);
        } catch (Throwable t) {
            throw new IllegalStateException("JCuda handle: " + t, t);
        }
    }
}
