package org.yixian.partner;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The pair numbers of the events read so far (docs/adr/0012, 0015, 0016). Within a link
 * epoch one number names one event, and an event keeps its number for ever: the same event
 * sent again (after a failure, or on the partner's replay request) carries the same number.
 * A number that names a second event, or an event that comes with a second number, makes
 * the event invalid.
 *
 * <p>Numbers go up as the source publishes, but a reader sees them in that order only
 * within one partition, and not always there: a row the broker refused for good is parked
 * with its number and, once repaired, published after later numbers (docs/adr/0015). So a
 * number below one already seen in its partition is noted, not refused; so is an event of
 * an older epoch (a straggler). Only events otherwise valid count: a forged event cannot
 * take a real event's number. The summary lists, per epoch, the numbers never seen: a gap
 * the receiving node would ask to be replayed.
 */
final class Numbering {
    private static final int MOST_GAPS_LISTED = 50;

    private record Number(long epoch, long pairseq) {
        @Override
        public String toString() {
            return epoch == 0 ? "pairseq " + pairseq : "pairseq " + pairseq + " of epoch " + epoch;
        }
    }

    private record Seen(String id, int partition, long offset) {
        @Override
        public String toString() {
            return "event " + id + " (partition " + partition + ", offset " + offset + ")";
        }
    }

    private final Map<Number, Seen> byNumber = new HashMap<>();
    private final Map<String, Number> byId = new HashMap<>();
    /** Partition → epoch → highest number seen there. */
    private final Map<Integer, Map<Long, Long>> highest = new HashMap<>();
    private final TreeMap<Long, TreeSet<Long>> seen = new TreeMap<>();

    void record(int partition, long offset, Verdict verdict) {
        if (!verdict.valid() || verdict.id == null || verdict.pairseq == null) {
            return;
        }
        Number number = new Number(verdict.epoch, verdict.pairseq);
        Number before = byId.get(verdict.id);
        if (before != null && !before.equals(number)) {
            verdict.error("pairseq", "event " + verdict.id + " came before as " + before
                    + ": an event keeps its number when it is sent again");
            return;
        }
        Seen named = byNumber.get(number);
        if (named != null && !named.id().equals(verdict.id)) {
            verdict.error("pairseq", number + " already named " + named + ": one number names one event");
            return;
        }
        if (named != null) {
            verdict.note("sent again: " + number + " came before at partition " + named.partition()
                    + ", offset " + named.offset());
            return;
        }
        if (!seen.isEmpty() && verdict.epoch < seen.lastKey()) {
            verdict.note("a straggler of an older link epoch than " + seen.lastKey()
                    + ": its number counts for nothing (docs/adr/0016)");
        }
        Map<Long, Long> here = highest.computeIfAbsent(partition, p -> new HashMap<>());
        Long top = here.get(verdict.epoch);
        if (top != null && verdict.pairseq < top) {
            verdict.note("pairseq " + verdict.pairseq + " after " + top + " in partition " + partition
                    + ": published late (retried after being parked, docs/adr/0015)");
        }
        here.merge(verdict.epoch, verdict.pairseq, Math::max);
        byNumber.put(number, new Seen(verdict.id, partition, offset));
        byId.put(verdict.id, number);
        seen.computeIfAbsent(verdict.epoch, e -> new TreeSet<>()).add(verdict.pairseq);
    }

    /** Per epoch: how many numbers were seen, the highest, and the runs missing below it. */
    ArrayNode summary(ObjectMapper json) {
        ArrayNode epochs = json.createArrayNode();
        seen.forEach((epoch, numbers) -> {
            ObjectNode entry = epochs.addObject();
            entry.put("epoch", epoch);
            entry.put("numbers", numbers.size());
            entry.put("highest", numbers.last());
            ArrayNode missing = entry.putArray("missing");
            long expected = 1;
            for (long number : numbers) {
                if (number > expected) {
                    if (missing.size() == MOST_GAPS_LISTED) {
                        entry.put("more_missing", true);
                        break;
                    }
                    missing.addArray().add(expected).add(number - 1);
                }
                expected = number + 1;
            }
        });
        return epochs;
    }
}
