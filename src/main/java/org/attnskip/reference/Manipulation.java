package org.attnskip.reference;

import java.util.Set;

/**
 * What to do to the forward pass, as /work/shared/docs/MANIPULATIONS.md defines it. Layers are
 * 0-based; "previous tokens" are all positions except the last one of the sequence being scored.
 */
public sealed interface Manipulation {
    Manipulation NONE = new None();

    /** The normal model. */
    record None() implements Manipulation {
    }

    /** For every token, the attention sub-block of these layers is removed: h_out = h_in + MLP(norm2(h_in)). */
    record Drop(Set<Integer> layers) implements Manipulation {
        public Drop {
            layers = Set.copyOf(layers);
        }
    }

    /**
     * Calibrated drop: in these layers the attention sub-block is replaced by a fitted per-token
     * map of the layer's own attention norm, h_mid = h_in + map(norm1(h_in)); no cache, no attention.
     */
    record CompensatedDrop(java.util.Map<Integer, AffineMap> maps) implements Manipulation {
        public CompensatedDrop {
            maps = java.util.Map.copyOf(maps);
        }
    }

    /**
     * Previous tokens' states are frozen at the input of layer k: in every layer i >= k, their K/V
     * are computed by layer i's own norm, K/V projections and rotary (at the token's own position)
     * from the state that entered layer k. The last token runs normally and uses its own normal K/V.
     * Layer k itself is exact; k = L changes nothing.
     */
    record Freeze(int k) implements Manipulation {
    }

    /**
     * Freeze, single-input flavour (SwiftKV's SingleInputKV): in every layer i >= k, every
     * position's K/V, the current token's included, are computed by layer i's own norm, K/V
     * projections and rotary (at the position) from that position's state at the input of layer k.
     * Queries, attention, output projection and MLP run normally. This is a causal model: every
     * position's logits are those it has as the last token. Layer k is exact; k >= L - 1 changes nothing.
     */
    record SingleInputFreeze(int k) implements Manipulation {
    }

    /**
     * At the input of layer k each previous token's hidden vector is replaced by noise (see
     * {@link NoiseDraw}); layers k..L-1 then run normally on the corrupted previous tokens. The last
     * token is untouched. k = L changes nothing.
     */
    record Random(int k, Noise noise, long seed) implements Manipulation {
    }

    /**
     * At the input of this one layer only (L means the input of the final norm), the hidden state of
     * this position is overwritten with state. Every later position sees the switched state through
     * attention; nothing else is touched.
     */
    record Switch(int layer, int position, float[] state) implements Manipulation {
        public Switch {
            state = state.clone();
        }

        @Override
        public float[] state() {
            return state.clone();
        }
    }
}
