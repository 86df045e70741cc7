package org.attnskip.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chat templates as Hugging Face writes them, rendered and compared with the text written out by hand. */
class ChatTemplateTest {
    /** Meta Llama 3 Instruct's template, as its tokenizer_config.json has it. */
    static final String LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}"
            + "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
            + " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
            + "{{ content }}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    /** A Mistral-style template that checks the roles alternate, with raise_exception. */
    static final String ALTERNATING = "{{ bos_token }}{% for message in messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}\n"
            + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}\n"
            + "{% endfor %}";

    /** SmolLM2 Instruct's ChatML template: a default system turn when the conversation has none. */
    static final String SMOLLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
            + "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    @TempDir
    Path tmp;

    static Path writeConfig(Path dir, String template) throws Exception {
        Files.createDirectories(dir);
        new ObjectMapper().writeValue(dir.resolve(ChatTemplate.CONFIG_FILE).toFile(), Map.of("chat_template", template,
                "bos_token", "<|begin_of_text|>", "eos_token", Map.of("__type", "AddedToken", "content", "<|eot_id|>")));
        return dir;
    }

    @Test
    void llama3TemplateRendersAsWrittenByHand() throws Exception {
        ChatTemplate t = ChatTemplate.find(writeConfig(tmp, LLAMA3));
        List<Map<String, Object>> messages = List.of(Map.of("role", "system", "content", "Be brief."),
                Map.of("role", "user", "content", "  Hello there \n"));
        String expected = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n";
        assertEquals(expected, t.render(messages, true));
        assertEquals(expected.substring(0, expected.lastIndexOf("<|start_header_id|>")), t.render(messages, false));
        assertEquals("<|eot_id|>", t.eosToken());
    }

    @Test
    void chatMlTemplateAddsItsDefaultSystemTurnOnlyWhenNoneIsGiven() throws Exception {
        ChatTemplate t = ChatTemplate.find(writeConfig(tmp, SMOLLM2));
        assertEquals("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                t.render(List.of(Map.of("role", "user", "content", "Hi")), true));
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
                t.render(List.of(Map.of("role", "system", "content", "Be brief."), Map.of("role", "user", "content", "Hi")),
                        false));
    }

    @Test
    void raiseExceptionBecomesA400WithTheTemplatesMessage() throws Exception {
        ChatTemplate t = ChatTemplate.find(writeConfig(tmp, ALTERNATING));
        assertEquals("<|begin_of_text|>[INST] Hi [/INST]Hello<|eot_id|>[INST] More [/INST]",
                t.render(List.of(Map.of("role", "user", "content", "Hi"), Map.of("role", "assistant", "content", "Hello"),
                        Map.of("role", "user", "content", "More")), true));
        ApiError e = assertThrows(ApiError.class, () -> t.render(List.of(Map.of("role", "assistant", "content", "Hi")), true));
        assertEquals(400, e.status());
        assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
    }

    @Test
    void messagesAreTextNotTemplates() throws Exception {
        ChatTemplate t = ChatTemplate.find(writeConfig(tmp, SMOLLM2));
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n{{ 6 * 7 }}{% raise_exception('x') %}<|im_end|>\n",
                t.render(List.of(Map.of("role", "system", "content", "S"),
                        Map.of("role", "user", "content", "{{ 6 * 7 }}{% raise_exception('x') %}")), false));
    }

    @Test
    void aConfigWithoutTemplateHasNone() throws Exception {
        new ObjectMapper().writeValue(tmp.resolve(ChatTemplate.CONFIG_FILE).toFile(), Map.of("bos_token", "<s>"));
        assertNull(ChatTemplate.find(tmp));
        assertNull(ChatTemplate.find(tmp.resolve("nowhere")));
    }
}
