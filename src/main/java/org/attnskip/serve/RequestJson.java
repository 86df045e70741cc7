package org.attnskip.serve;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;

/**
 * The JSON mapper for request bodies, with tight parsing limits: a completion request is an object
 * a few levels deep, so anything nested deeper than {@link #MAX_DEPTH} (a body of 100,000 '[' would
 * otherwise cost a deep recursion) or holding absurdly long numbers is refused as bad JSON.
 */
final class RequestJson {
    static final int MAX_DEPTH = 32;

    private RequestJson() {
    }

    static ObjectMapper mapper() {
        JsonFactory factory = JsonFactory.builder().streamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(MAX_DEPTH).maxNumberLength(64).build()).build();
        return new ObjectMapper(factory);
    }

    /**
     * The body as JSON, or a 400. Jackson guesses the encoding of raw bytes (UTF-8, -16 or -32) and
     * reports characters invalid in the guessed one as a CharConversionException, which is an
     * IOException but not a JsonProcessingException: both are the client's bad JSON.
     */
    static JsonNode parse(ObjectMapper json, byte[] raw) {
        try {
            return json.readTree(raw);
        } catch (JsonProcessingException e) {
            throw ApiError.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw ApiError.invalid(null, "the request body is not valid JSON: " + e.getMessage());
        }
    }
}
