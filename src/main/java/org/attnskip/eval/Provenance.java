package org.attnskip.eval;

import org.attnskip.runtime.OrtSessionFactory;

import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/** Where and with what the numbers were measured. */
public record Provenance(String tool, String onnxRuntimeVersion, String deviceRequested, String providerUsed,
                         String fallbackNote, int intraOpThreads, String graphOptimization, int availableProcessors,
                         String cpu, String os, String java, String host, String timestamp) {

    public static Provenance collect(String toolVersion, String deviceRequested, String providerUsed, String fallbackNote,
                                     int intraOpThreads, String graphOptimization) {
        int cores = Runtime.getRuntime().availableProcessors();
        return new Provenance("attnskip " + toolVersion, OrtSessionFactory.environment().getVersion(), deviceRequested,
                providerUsed, fallbackNote, intraOpThreads > 0 ? intraOpThreads : cores, graphOptimization, cores,
                cpuModel(), System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch"),
                System.getProperty("java.vm.name") + " " + System.getProperty("java.version"), hostName(),
                Instant.now().toString());
    }

    private static String cpuModel() {
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/cpuinfo"));
            for (String line : lines) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (Exception ignored) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            return "unknown";
        }
    }
}
