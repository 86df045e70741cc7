package org.attnskip;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.library.dependencies.SlicesRuleDefinition;
import org.junit.jupiter.api.Test;

import java.util.List;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The import direction the README's "Layout of the code" promises: each package imports only the
 * packages below it, and no two packages import each other.
 */
class PackageLayeringTest {
    /** Top to bottom. */
    private static final List<String> LAYERS = List.of(
            "cli", "probe", "eval", "serve", "runtime", "rewrite", "reference", "export", "layout", "onnx");

    private static final JavaClasses MAIN_CLASSES = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("org.attnskip");

    @Test
    void everyPackageImportsOnlyThePackagesBelowIt() {
        for (int i = 1; i < LAYERS.size(); i++) {
            String[] above = LAYERS.subList(0, i).stream().map(p -> "org.attnskip." + p + "..").toArray(String[]::new);
            noClasses().that().resideInAPackage("org.attnskip." + LAYERS.get(i) + "..")
                    .should().dependOnClassesThat().resideInAnyPackage(above)
                    .because(LAYERS.get(i) + " sits below " + String.join(", ", LAYERS.subList(0, i)))
                    .check(MAIN_CLASSES);
        }
    }

    @Test
    void noPackageCycles() {
        SlicesRuleDefinition.slices().matching("org.attnskip.(*)..").should().beFreeOfCycles().check(MAIN_CLASSES);
    }

    @Test
    void everyMainPackageIsPlacedInTheLayering() {
        List<String> unplaced = MAIN_CLASSES.stream()
                .map(c -> c.getPackageName().replaceFirst("^org\\.attnskip\\.?", "").split("\\.")[0])
                .distinct().filter(p -> !LAYERS.contains(p)).toList();
        org.junit.jupiter.api.Assertions.assertEquals(List.of(), unplaced,
                "packages not placed in the layering (add them to LAYERS and the README)");
    }
}
