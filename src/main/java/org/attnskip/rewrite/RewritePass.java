package org.attnskip.rewrite;

import org.attnskip.layout.DecoderLayout;
import org.attnskip.onnx.Graph;

/**
 * One manipulation of a decoder graph, built with its options (context length, noise, freeze
 * form, fitted maps...). It edits {@code g} in place through {@link Graph}'s verbs, reads the
 * graph only through {@code layout} (which discovery made from this same {@code g}), never writes
 * files, and reports what it changed. {@link Rewrite} validates and saves the result.
 */
@FunctionalInterface
public interface RewritePass {
    ChangeReport apply(Graph g, DecoderLayout layout, LayerSelection selection);
}
