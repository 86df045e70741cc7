package org.attnskip.eval;

import java.util.Map;

/** A model under evaluation: its file, the rewrite recorded in its metadata, and its KV bytes per position. */
public record ModelInfo(String path, Map<String, String> rewrite, long kvBytesPerToken) {
}
