package org.attnskip.probe;

import org.attnskip.eval.TextQuality;
import org.attnskip.onnx.BadInputException;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * How much quality a user gives up, as one or more bounds that must all hold on the measured point
 * values: {@code top1=0.9} (top-1 agreement with the baseline at least 0.9), {@code kl=0.1} (mean
 * KL(baseline || variant) at most 0.1 nats) and {@code ppl=+5%} (variant perplexity at most 5%
 * above the baseline's; {@code ppl=0.05} means the same). Several are joined with commas.
 */
public record QualityTolerance(List<Bound> bounds) {

    public enum Metric { TOP1, KL, PPL }

    /** One bound; for PPL the limit is the allowed relative increase (0.05 = +5%). */
    public record Bound(Metric metric, double limit) {
        boolean accepts(TextQuality q) {
            return switch (metric) {
                case TOP1 -> q.top1Agreement().value() >= limit;
                case KL -> q.meanKl().value() <= limit;
                case PPL -> q.variantPerplexity().value() <= q.baselinePerplexity().value() * (1 + limit);
            };
        }

        @Override
        public String toString() {
            return switch (metric) {
                case TOP1 -> "top1>=" + limit;
                case KL -> "kl<=" + limit;
                case PPL -> String.format(Locale.ROOT, "ppl<=+%s%%", trim(100 * limit));
            };
        }
    }

    public static QualityTolerance parse(String text) {
        List<Bound> bounds = new ArrayList<>();
        for (String part : text.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) {
                continue;
            }
            int eq = p.indexOf('=');
            if (eq < 0) {
                throw new BadInputException("--tolerance " + p + ": expected top1=A, kl=K or ppl=+P%");
            }
            String name = p.substring(0, eq).trim().toLowerCase(Locale.ROOT);
            String value = p.substring(eq + 1).trim();
            Metric metric = switch (name) {
                case "top1" -> Metric.TOP1;
                case "kl" -> Metric.KL;
                case "ppl" -> Metric.PPL;
                default -> throw new BadInputException("--tolerance " + p + ": unknown metric '" + name + "' (use top1, kl or ppl)");
            };
            double limit = number(p, metric == Metric.PPL ? percentOrFraction(value) : value);
            if (metric == Metric.TOP1 && (limit < 0 || limit > 1)) {
                throw new BadInputException("--tolerance " + p + ": top-1 agreement is a share in [0, 1]");
            }
            if (limit < 0) {
                throw new BadInputException("--tolerance " + p + ": the bound must not be negative");
            }
            bounds.add(new Bound(metric, limit));
        }
        if (bounds.isEmpty()) {
            throw new BadInputException("--tolerance names no bound: use e.g. top1=0.9, kl=0.1 or ppl=+5%");
        }
        return new QualityTolerance(List.copyOf(bounds));
    }

    /** True when every bound holds on the measured point values. */
    public boolean accepts(TextQuality quality) {
        return bounds.stream().allMatch(b -> b.accepts(quality));
    }

    /** "+5%" and "5%" are 0.05; a plain number is already a fraction. */
    private static String percentOrFraction(String value) {
        String v = value.startsWith("+") ? value.substring(1) : value;
        if (v.endsWith("%")) {
            try {
                return Double.toString(Double.parseDouble(v.substring(0, v.length() - 1).trim()) / 100);
            } catch (NumberFormatException e) {
                return value;
            }
        }
        return v;
    }

    private static double number(String part, String value) {
        try {
            double d = Double.parseDouble(value);
            if (!Double.isFinite(d)) {
                throw new NumberFormatException();
            }
            return d;
        } catch (NumberFormatException e) {
            throw new BadInputException("--tolerance " + part + ": '" + value + "' is not a number");
        }
    }

    private static String trim(double v) {
        String s = String.format(Locale.ROOT, "%.4f", v);
        return s.replaceAll("0+$", "").replaceAll("\\.$", "");
    }

    @Override
    public String toString() {
        return String.join(", ", bounds.stream().map(Bound::toString).toList());
    }
}
