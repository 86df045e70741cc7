package org.attnskip.cli;

import org.attnskip.export.ModelDirectory;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.serve.TritonRepository;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "export-triton",
        description = {"Write a Triton Inference Server model repository (onnxruntime backend) for a graph:",
                "REPO/NAME/config.pbtxt with the graph's inputs and outputs, and REPO/NAME/1/model.onnx."})
public final class ExportTritonCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "a model directory from 'attnskip export'/'optimize', or an .onnx file")
    Path model;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "REPO", description = "the model repository folder")
    Path repository;

    @Option(names = "--name", paramLabel = "NAME", description = "the model's name in the repository (default: from MODEL)")
    String name;

    @Override
    public Integer call() {
        Path file = Files.isDirectory(model) && ModelDirectory.isModelDirectory(model)
                ? ModelDirectory.read(model).modelFile() : OnnxModelIO.resolveModelFile(model);
        String modelName = name != null ? name : defaultName(model);
        if (Files.exists(repository.resolve(modelName))) {
            throw new BadInputException(repository.resolve(modelName) + " already exists; remove it or pick another --name");
        }
        LoadedModel loaded = OnnxModelIO.load(file);
        Path folder = TritonRepository.write(loaded, modelName, repository);
        System.out.println("wrote " + folder + " (config.pbtxt, 1/model.onnx)");
        return 0;
    }

    private static String defaultName(Path model) {
        String n = model.toAbsolutePath().normalize().getFileName().toString();
        if (n.endsWith(".onnx")) {
            n = n.substring(0, n.length() - 5);
        }
        return n.replaceAll("[^A-Za-z0-9_.-]", "_");
    }
}
