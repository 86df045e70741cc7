package org.attnskip.eval;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The demo's data is found from any directory: the project folder's eval/, else the packed copy. */
class ShippedEvalDataTest {
    @TempDir
    Path elsewhere;

    @TempDir
    Path scratch;

    @Test
    void fromAnotherDirectoryThePackedCopyHoldsTheSameStoriesAndTasks() throws Exception {
        ShippedEvalData.Located packed = ShippedEvalData.find(elsewhere, scratch);
        assertNotNull(packed, "the evaluation data is not on the class path");
        assertTrue(packed.stories().startsWith(scratch), packed.stories().toString());
        assertEquals(TextDocuments.read(Path.of("eval/stories.txt")), TextDocuments.read(packed.stories()));
        List<Task> tasks = Task.load(packed.tasks());
        List<Task> project = Task.load(Path.of("eval/tasks"));
        assertEquals(project.stream().map(Task::name).sorted().toList(), tasks.stream().map(Task::name).sorted().toList());
        for (Task t : project) {
            assertEquals(Files.readString(Path.of("eval/tasks", t.name() + ".jsonl")),
                    Files.readString(packed.tasks().resolve(t.name() + ".jsonl")), t.name());
        }
    }

    @Test
    void inTheProjectFolderItsOwnEvalFolderIsUsed() {
        ShippedEvalData.Located local = ShippedEvalData.find(Path.of(""), scratch);
        assertEquals(Path.of("eval/stories.txt"), local.stories());
        assertEquals(Path.of("eval/tasks"), local.tasks());
    }
}
