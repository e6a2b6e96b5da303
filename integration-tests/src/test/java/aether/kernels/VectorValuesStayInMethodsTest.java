package aether.kernels;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.constantpool.ClassEntry;
import java.lang.constant.ClassDesc;
import java.lang.constant.MethodTypeDesc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * No method of the product takes or returns a Vector API vector or mask. Whether C2 inlines a call depends on what it
 * happened to compile first (a helper already compiled on its own and larger than {@code InlineSmallCode} is not
 * inlined into its caller), and a vector crossing a call that is not inlined is boxed: about 100 bytes per 8 lanes.
 * An f16 widening helper in the attention kernels did exactly that in one CI run in several (92 KB per decode step on
 * a two-layer model, the decode loop's allocation tests failing), and never on a quiet run. So the rule is checked
 * here on the bytecode of every main class, where it does not depend on the JIT's timing: kernels load, compute and
 * store their vectors within one method, and helpers take scalars, arrays and segments. Species, shuffles and
 * operators are constants built once and may be passed.
 */
class VectorValuesStayInMethodsTest {

    private static final String VECTOR_PACKAGE = "jdk.incubator.vector";

    @Test
    void shouldKeepEveryVectorInsideOneMethod() throws IOException {
        Map<String, byte[]> classes = productClasses();
        assertThat(classes).as("main classes of every module on the test class path")
                .containsKeys("aether/scheduler/compile/AttentionKernels",
                        "aether/runtime/quant/VectorKernels",
                        "aether/runtime/quant/KQuantVector",
                        "aether/device/cpu/kernel/Q4_0BatchKernels",
                        "aether/llm/engine/PagedInferenceModel");
        List<String> offenders = new ArrayList<>();
        int vectorClasses = 0;
        for (var entry : classes.entrySet()) {
            ClassModel model = ClassFile.of().parse(entry.getValue());
            boolean usesVectors = false;
            for (MethodModel method : model.methods()) {
                MethodTypeDesc type = method.methodTypeSymbol();
                List<ClassDesc> types = new ArrayList<>(type.parameterList());
                types.add(type.returnType());
                if (types.stream().anyMatch(VectorValuesStayInMethodsTest::isVectorValue)) {
                    offenders.add(entry.getKey().replace('/', '.') + "." + method.methodName().stringValue()
                            + type.displayDescriptor());
                }
            }
            for (var constant : model.constantPool()) {
                if (constant instanceof ClassEntry c && c.asInternalName().startsWith("jdk/incubator/vector/")) {
                    usesVectors = true;
                    break;
                }
            }
            vectorClasses += usesVectors ? 1 : 0;
        }
        assertThat(vectorClasses).as("classes that use the Vector API (the scan saw the kernels)").isGreaterThan(10);
        assertThat(offenders).as("methods passing a vector or mask across a call").isEmpty();
    }

    /** A vector or a mask (boxed when it crosses a call that is not inlined); species, shuffles, operators are not. */
    private static boolean isVectorValue(ClassDesc t) {
        if (t.isArray()) {
            return false;   // arrays of vectors are static tables, read element by element
        }
        if (!t.isClassOrInterface() || !t.packageName().equals(VECTOR_PACKAGE)) {
            return false;
        }
        String name = t.displayName();
        return name.endsWith("Vector") || name.endsWith("Mask");
    }

    /** Class files under {@code aether/} in every directory or jar of the class path that is not test code. */
    private static Map<String, byte[]> productClasses() throws IOException {
        Map<String, byte[]> classes = new TreeMap<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path path = Path.of(entry);
            String name = path.getFileName() == null ? "" : path.getFileName().toString();
            if (name.equals("test-classes") || name.endsWith("-tests.jar") || !Files.exists(path)) {
                continue;
            }
            if (Files.isDirectory(path)) {
                try (Stream<Path> files = Files.walk(path)) {
                    files.filter(f -> f.toString().endsWith(".class")).forEach(f -> {
                        String relative = path.relativize(f).toString().replace(File.separatorChar, '/');
                        if (relative.startsWith("aether/")) {
                            classes.put(relative.substring(0, relative.length() - ".class".length()), read(f));
                        }
                    });
                }
            } else if (name.endsWith(".jar")) {
                try (JarFile jar = new JarFile(path.toFile())) {
                    for (var e : (Iterable<java.util.jar.JarEntry>) jar.stream()::iterator) {
                        if (e.getName().startsWith("aether/") && e.getName().endsWith(".class")) {
                            try (var in = jar.getInputStream(e)) {
                                classes.put(e.getName().substring(0, e.getName().length() - 6), in.readAllBytes());
                            }
                        }
                    }
                }
            }
        }
        return classes;
    }

    private static byte[] read(Path f) {
        try {
            return Files.readAllBytes(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
