package org.attnskip.runtime;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Direct buffers reused by one sequence's runs for its small integer inputs (ids, mask, positions)
 * and its pinned logits output, so that a decode step allocates no native memory for them. A tensor made over such a buffer reads
 * it in place: the buffer is written again only after that run's tensors are closed.
 */
final class InputScratch {
    private ByteBuffer[] buffers;

    /** Slots 0-2 hold ids, mask and positions, 3 the pinned logits; more grow on demand. */
    InputScratch() {
        buffers = new ByteBuffer[4];
    }

    /** A native-order buffer of exactly {@code bytes} for input {@code index}, grown (doubling) when too small. */
    ByteBuffer take(int index, int bytes) {
        if (index >= buffers.length) {
            buffers = java.util.Arrays.copyOf(buffers, index + 1);
        }
        ByteBuffer b = buffers[index];
        if (b == null || b.capacity() < bytes) {
            b = ByteBuffer.allocateDirect(Math.max(bytes, b == null ? 64 : 2 * b.capacity())).order(ByteOrder.nativeOrder());
            buffers[index] = b;
        }
        return b.duplicate().clear().limit(bytes).slice().order(ByteOrder.nativeOrder());
    }
}
