package org.attnskip.hostile;

import java.util.Random;

/** The campaign's mutators, for parser-level fuzz tests in other packages. */
public final class MutatorsAccess {
    private MutatorsAccess() {
    }

    public static byte[] json(byte[] seed, Random r) {
        return Mutators.json(seed, r);
    }

    public static byte[] bytes(byte[] seed, Random r) {
        return Mutators.bytes(seed, r);
    }
}
