package org.attnskip.rewrite;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Records in the model's metadata_props what attnskip did, so that servers and reports can show it. */
public final class RewriteMetadata {
    public static final String PREFIX = "attnskip.";

    private RewriteMetadata() {
    }

    public static ModelProto stamp(ModelProto model, ChangeReport report, String toolVersion) {
        return stamp(model, report, toolVersion, Map.of());
    }

    /** With extra entries such as the random pass's noise kind and seed. */
    public static ModelProto stamp(ModelProto model, ChangeReport report, String toolVersion, Map<String, String> extra) {
        Map<String, String> props = new LinkedHashMap<>();
        props.put(PREFIX + "mode", report.mode().label);
        props.put(PREFIX + "threshold", report.threshold() == null ? "" : report.threshold());
        props.put(PREFIX + "layers", report.layers().stream().map(String::valueOf).collect(Collectors.joining(",")));
        props.put(PREFIX + "first_changed_layer", String.valueOf(report.firstChangedLayer()));
        props.put(PREFIX + "version", toolVersion);
        extra.forEach((k, v) -> props.put(PREFIX + k, v));
        ModelProto.Builder b = model.toBuilder();
        // A second rewrite replaces the first one's record rather than leaving two.
        List<StringStringEntryProto> kept = b.getMetadataPropsList().stream()
                .filter(e -> !e.getKey().startsWith(PREFIX)).toList();
        b.clearMetadataProps().addAllMetadataProps(kept);
        props.forEach((k, v) -> b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(k).setValue(v)));
        return b.build();
    }

    public static Map<String, String> read(ModelProto model) {
        Map<String, String> m = new LinkedHashMap<>();
        for (StringStringEntryProto e : model.getMetadataPropsList()) {
            if (e.getKey().startsWith(PREFIX)) {
                m.put(e.getKey().substring(PREFIX.length()), e.getValue());
            }
        }
        return m;
    }
}
