package org.attnskip;

import org.attnskip.cli.Main;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;

/**
 * The command line of a separate JVM running {@link Main} on this test's classpath. The classpath
 * goes into a manifest-only jar (as surefire does), because ONNX Runtime 1.29 crashed (SIGSEGV) at
 * start-up here when the same entries were given with {@code -cp}.
 */
public final class ChildJvm {
    private ChildJvm() {
    }

    public static List<String> command(Path scratch, String... args) throws IOException {
        Path jar = scratch.resolve("classpath.jar");
        if (!Files.exists(jar)) {
            StringBuilder classPath = new StringBuilder();
            for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
                classPath.append(Path.of(entry).toUri()).append(' ');
            }
            Manifest m = new Manifest();
            m.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
            m.getMainAttributes().put(Attributes.Name.MAIN_CLASS, Main.class.getName());
            m.getMainAttributes().put(Attributes.Name.CLASS_PATH, classPath.toString().strip());
            try (OutputStream out = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(out, m)) {
                j.flush();
            }
        }
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        return cmd;
    }
}
