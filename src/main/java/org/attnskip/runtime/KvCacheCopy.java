package org.attnskip.runtime;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * An independent copy of a KV cache, so that several continuations of one prefilled prompt (a
 * request's n choices) each decode from their own cache without prefilling the prompt again.
 */
public final class KvCacheCopy {
    private KvCacheCopy() {
    }

    /** A copy of {@code cache} that the caller owns; the original is left as it was. */
    public static KvCache of(DecoderSession session, KvCache cache) {
        if (cache.inPlace()) {
            return KvCache.copyInPlace(OrtSessionFactory.environment(), session.slots(), cache);
        }
        List<ByteBuffer> data = new ArrayList<>();
        for (DecoderSession.CacheSlot slot : session.slots()) {
            ByteBuffer source = cache.tensors().get(slot.past()).getByteBuffer(); // ONNX Runtime hands out a copy
            ByteBuffer direct = ByteBuffer.allocateDirect(source.remaining()).order(source.order());
            direct.put(source).flip();
            data.add(direct);
        }
        return session.cacheOf(data, cache.batch(), cache.length());
    }
}
