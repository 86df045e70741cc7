package org.attnskip.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import org.attnskip.onnx.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's chat template: the Jinja {@code chat_template} of its Hugging Face
 * {@code tokenizer_config.json}, rendered as transformers' {@code apply_chat_template} renders it
 * (blocks trimmed and left-stripped; {@code messages}, {@code add_generation_prompt} and the special
 * tokens as variables; {@code raise_exception} for the template's own checks).
 */
public final class ChatTemplate {
    /** The file that carries the template, next to the tokenizer in a Hugging Face checkpoint. */
    public static final String CONFIG_FILE = "tokenizer_config.json";
    private static final String[] SPECIAL_TOKENS = {"bos_token", "eos_token", "unk_token", "pad_token"};

    private final String template;
    private final Map<String, String> specialTokens;
    private final Jinjava jinjava;

    private ChatTemplate(String template, Map<String, String> specialTokens) {
        this.template = template;
        this.specialTokens = specialTokens;
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withNestedInterpretationEnabled(false) // a message that looks like a template stays text
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true).withKeepNullableLoopValues(true).build())
                .build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
    }

    /** The template in {@code dir}'s tokenizer_config.json, or null when there is none. */
    public static ChatTemplate find(Path dir) {
        Path file = dir.resolve(CONFIG_FILE);
        if (!Files.isRegularFile(file)) {
            return null;
        }
        JsonNode config;
        try {
            config = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
        String template = template(config.get("chat_template"));
        if (template == null) {
            return null;
        }
        Map<String, String> special = new HashMap<>();
        for (String name : SPECIAL_TOKENS) {
            String content = tokenText(config.get(name));
            if (content != null) {
                special.put(name, content);
            }
        }
        return new ChatTemplate(template, special);
    }

    /** A string, or HF's list of named templates, of which "default" (else the first) is used. */
    private static String template(JsonNode t) {
        if (t == null || t.isNull()) {
            return null;
        }
        if (t.isTextual()) {
            return t.textValue();
        }
        JsonNode chosen = null;
        for (JsonNode named : t) {
            if (chosen == null || "default".equals(named.path("name").asText())) {
                chosen = named;
            }
        }
        return chosen == null ? null : chosen.path("template").asText(null);
    }

    /** A special token is written as its text or as an AddedToken object with a "content" field. */
    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        return n.isTextual() ? n.textValue() : n.path("content").asText(null);
    }

    /** The end-of-turn token the template writes, or null. */
    public String eosToken() {
        return specialTokens.get("eos_token");
    }

    /**
     * @param messages each with "role" and "content" (and whatever else the client sent)
     * @throws ApiError 400 when the template refuses the conversation (its raise_exception) or fails
     */
    public String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        Map<String, Object> vars = new HashMap<>(specialTokens);
        vars.put("messages", messages);
        vars.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result = jinjava.renderForResult(template, vars);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                String raised = raisedMessage(e);
                throw new ApiError(400, "invalid_request_error", "messages", "chat_template_error", raised != null
                        ? "the chat template refused the messages: " + raised
                        : "the chat template failed to render: " + e.getMessage());
            }
        }
        return result.getOutput();
    }

    private static String raisedMessage(TemplateError e) {
        for (Throwable t = e.getException(); t != null; t = t.getCause()) {
            if (t instanceof Raised) {
                return t.getMessage();
            }
        }
        return null;
    }

    /** The template's {@code raise_exception(message)}: stops rendering with that message. */
    public static String raiseException(String message) {
        throw new Raised(message);
    }

    private static final class Raised extends RuntimeException {
        Raised(String message) {
            super(message);
        }
    }
}
