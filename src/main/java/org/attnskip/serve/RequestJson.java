package org.attnskip.serve;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.ObjectMapper;

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
}
