package org.yixian.partner;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** What the checks found about one record: its identity as far as it could be read, the
 * problems that make it invalid and notes that do not. */
final class Verdict {
    String id;
    String type;
    Long pairseq;
    /** The link epoch of {@link #pairseq}; 0 when the event carries none (docs/adr/0016). */
    long epoch;
    private final List<Problem> errors = new ArrayList<>();
    private final Set<String> notes = new LinkedHashSet<>();

    void error(String field, String reason) {
        errors.add(new Problem(field, reason));
    }

    boolean hasErrorAt(String field) {
        return errors.stream().anyMatch(p -> p.field().equals(field));
    }

    void note(String note) {
        notes.add(note);
    }

    boolean valid() {
        return errors.isEmpty();
    }

    List<Problem> errors() {
        return List.copyOf(errors);
    }

    List<String> notes() {
        return List.copyOf(notes);
    }
}
