package org.attnskip.eval;

import org.attnskip.runtime.LogProbs;
import org.attnskip.export.ExportDtype;
import org.attnskip.export.LlamaOnnxExporter;
import org.attnskip.export.LlamaWeights;
import org.attnskip.export.TestLlamaWeights;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.reference.ReferenceLlama;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Task scoring on ONNX Runtime against log-likelihoods computed from the Java reference's logits. */
class TaskScoringTest {
    @TempDir
    Path tmp;

    @Test
    void multipleChoiceAndClozeMatchTheReference() {
        LlamaWeights w = TestLlamaWeights.random(TestLlamaWeights.config(32, 64, 2, 4, 2, 300, 128, false), 5);
        Path model = tmp.resolve("tiny.onnx");
        OnnxModelIO.save(LlamaOnnxExporter.export(w, ExportDtype.FLOAT), null, model, false);
        ByteTokenizer tokenizer = new ByteTokenizer(300);
        ReferenceLlama reference = new ReferenceLlama(w);
        TaskScorer scorer = new TaskScorer(tokenizer, 128);
        TaskItem item = new TaskItem("Lily had a red", List.of(" ball", " hat", " cake"), 1);

        try (DecoderSession session = DecoderSession.open(model, Device.CPU)) {
            ScoringModel scoring = new ScoringModel(session);
            double[] expected = new double[3];
            int expectedBest = 0;
            for (int c = 0; c < 3; c++) {
                // bytes: the context's tokens are a prefix of the whole, so the split is at the context's length
                int[] whole = tokenizer.encode(item.context() + item.choices().get(c));
                int start = tokenizer.encode(item.context()).length;
                float[][] logits = reference.logitsAllPositions(whole);
                for (int t = start; t < whole.length; t++) {
                    expected[c] += LogProbs.logSoftmax(logits[t - 1])[whole[t]];
                }
                TaskScorer.Split split = scorer.split(item.context(), item.choices().get(c));
                assertEquals(start, split.continuationStart());
                assertEquals(expected[c], scorer.score(scoring, split).logLikelihood(), 1e-3);
                if (expected[c] > expected[expectedBest]) {
                    expectedBest = c;
                }
            }
            TaskScorer.Prediction p = scorer.predict(scoring, item);
            assertEquals(expectedBest, p.answer());
            assertEquals(expected[1], p.goldLogLikelihood(), 1e-3);

            // cloze: correct exactly when every continuation token is the reference's argmax
            int[] ctx = tokenizer.encode("Tom saw a");
            float[][] logits = reference.logitsAllPositions(ctx);
            int top = LogProbs.argmax(LogProbs.logSoftmax(logits[ctx.length - 1]));
            String greedyText = new String(new byte[] {(byte) (top - 3)}, java.nio.charset.StandardCharsets.ISO_8859_1);
            if (top >= 3 && top < 3 + 128) { // an ASCII byte, so the text round-trips to the same token
                assertEquals(1, scorer.predict(scoring, TaskItem.cloze("Tom saw a", greedyText)).answer());
            }
            int other = top == 3 + 'q' ? 'z' : 'q';
            assertEquals(0, scorer.predict(scoring, TaskItem.cloze("Tom saw a", String.valueOf((char) other))).answer());
        }
    }
}
