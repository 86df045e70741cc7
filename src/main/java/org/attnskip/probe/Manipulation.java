package org.attnskip.probe;

import org.attnskip.layout.DecoderLayout;
import org.attnskip.layout.LayoutDiscovery;
import org.attnskip.onnx.BadInputException;
import org.attnskip.onnx.Graph;
import org.attnskip.onnx.LoadedModel;
import org.attnskip.onnx.OnnxModelIO;
import org.attnskip.eval.DropCompensation;
import org.attnskip.rewrite.ChangeReport;
import org.attnskip.rewrite.CompensatedDropPass;
import org.attnskip.rewrite.DropAttentionPass;
import org.attnskip.rewrite.FreezeKv;
import org.attnskip.rewrite.FreezePass;
import org.attnskip.rewrite.LayerSelection;
import org.attnskip.rewrite.RandomNoisePass;
import org.attnskip.rewrite.RewriteMetadata;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One manipulation the probe measures: drop, calibrated drop, freeze (the exact all-positions form, for evaluation)
 * or random with a noise kind and seed. {@link #write} rewrites a model with it, as the sweep does.
 *
 * @param noise null unless kind is RANDOM
 */
public record Manipulation(Kind kind, RandomNoisePass.NoiseSpec noise, long seed) {
    public enum Kind { DROP, FREEZE, RANDOM, FREEZE_SINGLE_INPUT, DROP_COMPENSATED }

    public static Manipulation drop() {
        return new Manipulation(Kind.DROP, null, 0);
    }

    public static Manipulation freeze() {
        return new Manipulation(Kind.FREEZE, null, 0);
    }

    /** Freeze in its single-input flavour (--freeze-kv single-input), in the all-positions form. */
    public static Manipulation freezeSingleInput() {
        return new Manipulation(Kind.FREEZE_SINGLE_INPUT, null, 0);
    }

    /** Calibrated drop: each dropped attention sub-block replaced by a map fitted for that selection. */
    public static Manipulation dropCompensated() {
        return new Manipulation(Kind.DROP_COMPENSATED, null, 0);
    }

    /** Either flavour of freeze: prefill runs layers >= k for the last position only. */
    public boolean isFreeze() {
        return kind == Kind.FREEZE || kind == Kind.FREEZE_SINGLE_INPUT;
    }

    public static Manipulation random(String noise, long seed) {
        return new Manipulation(Kind.RANDOM, RandomNoisePass.NoiseSpec.parse(noise), seed);
    }

    /** drop, drop-compensated, freeze, random-gaussian, random-angle:30.0, random-shuffle. */
    public String name() {
        return kind == Kind.RANDOM ? "random-" + noise : kind.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** "drop,freeze,random" with the given noise kinds for random, e.g. gaussian,angle:30,shuffle. */
    public static List<Manipulation> parseModes(String modes, String noises, long seed) {
        List<Manipulation> out = new ArrayList<>();
        for (String m : modes.split(",")) {
            switch (m.trim().toLowerCase(Locale.ROOT)) {
                case "" -> { }
                case "drop" -> out.add(drop());
                case "freeze" -> out.add(freeze());
                case "freeze-single-input" -> out.add(freezeSingleInput());
                case "drop-compensated" -> out.add(dropCompensated());
                case "random" -> {
                    for (String n : noises.split(",")) {
                        if (!n.isBlank()) {
                            out.add(random(n, seed));
                        }
                    }
                }
                default -> throw new BadInputException("--modes " + modes + ": use drop, drop-compensated, freeze, freeze-single-input and random");
            }
        }
        if (out.isEmpty()) {
            throw new BadInputException("--modes names no manipulation");
        }
        return out;
    }

    /** Rewrites {@code baseline} with this manipulation on {@code layers} into {@code out}; a list (firstLayer -1) only for drop. */
    public ChangeReport write(Path baseline, LayerSelection layers, Path out, int contextLength, String toolVersion) {
        return write(baseline, layers, null, out, contextLength, toolVersion);
    }

    /** As above; {@code fitted} holds drop-compensated's maps for exactly {@code layers} (null for the other kinds). */
    public ChangeReport write(Path baseline, LayerSelection layers, DropCompensation.Fitted fitted, Path out, int contextLength,
                              String toolVersion) {
        if ((kind == Kind.DROP_COMPENSATED) != (fitted != null)) {
            throw new IllegalArgumentException(name() + (fitted == null ? " needs its fitted maps" : " takes no maps"));
        }
        LoadedModel loaded = OnnxModelIO.load(baseline);
        Graph graph = loaded.graph();
        DecoderLayout layout = LayoutDiscovery.discover(graph);
        Map<String, String> extra = Map.of();
        ChangeReport change = switch (kind) {
            case DROP -> DropAttentionPass.apply(graph, layout, layers, contextLength);
            case DROP_COMPENSATED -> {
                extra = fitted.metadata();
                yield CompensatedDropPass.apply(graph, layout, layers, fitted.maps(), contextLength);
            }
            case FREEZE -> FreezePass.apply(graph, layout, layers);
            case FREEZE_SINGLE_INPUT -> FreezeKv.SINGLE_INPUT.apply(graph, layout, layers, true);
            case RANDOM -> {
                extra = Map.of("noise", noise.toString(), "seed", Long.toString(seed));
                yield RandomNoisePass.apply(graph, layout, layers, noise);
            }
        };
        OnnxModelIO.save(loaded, RewriteMetadata.stamp(graph.toModel(), change, toolVersion, extra), out);
        return change;
    }
}
