package org.attnskip.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Writes a report directory: report.json (every number, the configuration and provenance),
 * report.md (the tables), the PNG charts, and report.html (tables and charts in one file, the
 * charts embedded as base64 PNG).
 */
public final class ReportWriter {
    private ReportWriter() {
    }

    public static void write(Path dir, Object report, String title, List<ReportTables.Table> tables, Map<String, byte[]> charts) {
        write(dir, report, title, List.of(), tables, charts);
    }

    /** As above, opening report.md and report.html with {@code summary} (one line each) before the tables. */
    public static void write(Path dir, Object report, String title, List<String> summary, List<ReportTables.Table> tables,
                             Map<String, byte[]> charts) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("report.json"), json(report) + "\n");
            for (var chart : charts.entrySet()) {
                Files.write(dir.resolve(chart.getKey()), chart.getValue());
            }
            Files.writeString(dir.resolve("report.md"), markdown(title, summary, tables, charts.keySet()), StandardCharsets.UTF_8);
            Files.writeString(dir.resolve("report.html"), html(title, summary, tables, charts), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new BadInputException("cannot write the report to " + dir + ": " + e.getMessage());
        }
    }

    /** The report as report.json holds it (snake_case keys), for --json on stdout. */
    public static String json(Object report) {
        try {
            return new ObjectMapper().setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
                    .enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot write the report as JSON: " + e.getMessage(), e);
        }
    }

    static String markdown(String title, List<String> summary, List<ReportTables.Table> tables, Iterable<String> chartFiles) {
        StringBuilder md = new StringBuilder("# ").append(title).append("\n\n");
        if (!summary.isEmpty()) {
            md.append("```\n").append(String.join("\n", summary)).append("\n```\n\n");
            // a report that opens with a summary shows its charts under it: they are part of the story
            chartFiles.forEach(file -> md.append("![").append(file).append("](").append(file).append(")\n\n"));
        }
        for (ReportTables.Table t : tables) {
            md.append("## ").append(t.title()).append("\n\n");
            if (t.note() != null) {
                md.append(t.note()).append("\n\n");
            }
            md.append('|').append(String.join("|", t.header().stream().map(ReportWriter::cell).toList())).append("|\n|");
            md.append("---|".repeat(t.header().size())).append('\n');
            for (List<String> row : t.rows()) {
                md.append('|').append(String.join("|", row.stream().map(ReportWriter::cell).toList())).append("|\n");
            }
            md.append('\n');
        }
        for (String file : summary.isEmpty() ? chartFiles : List.<String>of()) {
            md.append("![").append(file).append("](").append(file).append(")\n\n");
        }
        return md.toString();
    }

    private static String cell(String s) {
        return s.replace("|", "\\|").replace("\n", " ");
    }

    static String html(String title, List<String> summary, List<ReportTables.Table> tables, Map<String, byte[]> charts) {
        StringBuilder h = new StringBuilder("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>")
                .append(escape(title)).append("</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
                        + "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:4px 8px;"
                        + "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#eee}"
                        + "p.note{color:#555}pre.summary{background:#f4f4f4;padding:1em;white-space:pre-wrap}</style></head><body>\n<h1>")
                .append(escape(title)).append("</h1>\n");
        if (!summary.isEmpty()) {
            h.append("<pre class=\"summary\">").append(escape(String.join("\n", summary))).append("</pre>\n");
            htmlCharts(h, charts);
        }
        for (ReportTables.Table t : tables) {
            h.append("<h2>").append(escape(t.title())).append("</h2>\n");
            if (t.note() != null) {
                h.append("<p class=\"note\">").append(escape(t.note())).append("</p>\n");
            }
            h.append("<table><tr>");
            t.header().forEach(c -> h.append("<th>").append(escape(c)).append("</th>"));
            h.append("</tr>\n");
            for (List<String> row : t.rows()) {
                h.append("<tr>");
                row.forEach(c -> h.append("<td>").append(escape(c)).append("</td>"));
                h.append("</tr>\n");
            }
            h.append("</table>\n");
        }
        if (summary.isEmpty()) {
            htmlCharts(h, charts);
        }
        return h.append("</body></html>\n").toString();
    }

    private static void htmlCharts(StringBuilder h, Map<String, byte[]> charts) {
        for (var chart : charts.entrySet()) {
            h.append("<h2>").append(escape(chart.getKey())).append("</h2>\n<img alt=\"").append(escape(chart.getKey()))
                    .append("\" src=\"data:image/png;base64,").append(Base64.getEncoder().encodeToString(chart.getValue()))
                    .append("\">\n");
        }
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
