package org.attnskip.probe;

import org.attnskip.onnx.BadInputException;
import org.attnskip.rewrite.ExposeResidualStreamPass;
import org.attnskip.runtime.DecoderIo;
import org.attnskip.runtime.DecoderSession;
import org.attnskip.runtime.Device;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs a graph that {@link ExposeResidualStreamPass} rewrote on one prompt (a single prefill with
 * an empty past, batch 1, fed by {@link DecoderSession#prefillOutputs}) and returns its logits and
 * residual streams. The token inputs, caches and logits are those layout discovery found ({@link DecoderIo}).
 */
public final class HiddenStateRunner implements AutoCloseable {
    /**
     * One prompt's pass. hidden[l][t]: the stream entering layer l at position t (l = L: the last
     * layer's output); attentionOut[l][t]: after layer l's attention add. A layer that the graph
     * could not expose is null. logits[t] is the logits row of position t.
     */
    public record Pass(float[][][] hidden, float[][][] attentionOut, float[][] logits) {
        public int layers() {
            return attentionOut.length;
        }
    }

    private final DecoderSession session;
    private final int layers;

    private HiddenStateRunner(DecoderSession session, int layers) {
        this.session = session;
        this.layers = layers;
    }

    /** Opens an exposed graph; the layer count is read from its attnskip.attn_out.* outputs. */
    public static HiddenStateRunner open(Path exposedModel, Device device) {
        DecoderSession session = DecoderSession.open(exposedModel, device);
        try {
            int layers = 0;
            for (String name : session.opened().session().getOutputNames()) {
                if (name.startsWith(ExposeResidualStreamPass.HIDDEN_PREFIX)) {
                    layers = Math.max(layers, Integer.parseInt(name.substring(ExposeResidualStreamPass.HIDDEN_PREFIX.length())));
                }
            }
            if (layers == 0) {
                throw new BadInputException("the graph exposes no residual stream (no '" + ExposeResidualStreamPass.HIDDEN_PREFIX + "*' outputs)");
            }
            return new HiddenStateRunner(session, layers);
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
    }

    /** Opens any decoder graph to read outputs by name ({@link #outputs}), residual stream exposed or not. */
    public static HiddenStateRunner openForOutputs(Path model, Device device) {
        return new HiddenStateRunner(DecoderSession.open(model, device), 0);
    }

    public int layers() {
        return layers;
    }

    /** One prompt's pass, these [1, S, N] outputs as [S][N] each (null where the graph lacks one). */
    public Map<String, float[][]> outputs(int[] tokens, List<String> names) {
        return session.prefillOutputs(tokens, names);
    }

    public Pass run(int[] tokens) {
        List<String> names = new ArrayList<>();
        for (int l = 0; l <= layers; l++) {
            names.add(ExposeResidualStreamPass.hiddenName(l));
            if (l < layers) {
                names.add(ExposeResidualStreamPass.attentionOutName(l));
            }
        }
        names.add(session.io().logits());
        Map<String, float[][]> out = session.prefillOutputs(tokens, names);
        float[][][] hidden = new float[layers + 1][][];
        float[][][] attention = new float[layers][][];
        for (int l = 0; l <= layers; l++) {
            hidden[l] = out.get(ExposeResidualStreamPass.hiddenName(l));
            if (l < layers) {
                attention[l] = out.get(ExposeResidualStreamPass.attentionOutName(l));
            }
        }
        return new Pass(hidden, attention, out.get(session.io().logits()));
    }

    @Override
    public void close() {
        session.close();
    }
}
