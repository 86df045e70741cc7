package org.attnskip.eval;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.ToDoubleFunction;

/** The quality-latency Pareto frontier of sweep points and the recommended threshold on it. */
public final class Pareto {
    private Pareto() {
    }

    /**
     * The points no other point beats on both cost and loss (lower is better for both; a point equal on
     * both to another is kept), sorted by cost.
     */
    public static List<SweepPoint> frontier(List<SweepPoint> points, ToDoubleFunction<SweepPoint> cost,
                                            ToDoubleFunction<SweepPoint> loss) {
        List<SweepPoint> front = new ArrayList<>();
        for (SweepPoint p : points) {
            boolean dominated = false;
            for (SweepPoint q : points) {
                if (q != p && cost.applyAsDouble(q) <= cost.applyAsDouble(p) && loss.applyAsDouble(q) <= loss.applyAsDouble(p)
                        && (cost.applyAsDouble(q) < cost.applyAsDouble(p) || loss.applyAsDouble(q) < loss.applyAsDouble(p))) {
                    dominated = true;
                    break;
                }
            }
            if (!dominated) {
                front.add(p);
            }
        }
        front.sort(Comparator.comparingDouble(cost));
        return front;
    }

    /** The cheapest frontier point whose loss is at most maxLoss, or null. */
    public static SweepPoint recommend(List<SweepPoint> frontier, ToDoubleFunction<SweepPoint> cost,
                                       ToDoubleFunction<SweepPoint> loss, double maxLoss) {
        SweepPoint best = null;
        for (SweepPoint p : frontier) {
            if (loss.applyAsDouble(p) <= maxLoss && (best == null || cost.applyAsDouble(p) < cost.applyAsDouble(best))) {
                best = p;
            }
        }
        return best;
    }
}
