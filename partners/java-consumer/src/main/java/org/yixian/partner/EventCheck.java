package org.yixian.partner;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.path.NodePath;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;

/**
 * The checks of one record that need nothing but the record itself: its key, its CloudEvents
 * envelope, its payload against the JSON Schema of its type, and what a link event claims.
 * The envelope rules are checked here whatever the schemas say, so that the verdict is the
 * same with schemas that do not yet require {@code specversion}, {@code pairseq} or the
 * traceparent's pattern and with schemas that do. (Pair numbers across records:
 * {@link Numbering}.)
 */
final class EventCheck {
    static final String LINK_KEY = "link";
    static final String HEARTBEAT = "yixian.link.heartbeat.v1";
    static final String DIGEST = "yixian.link.digest.v1";
    /** A link epoch starting further ahead of this clock is a forged claim (docs/adr/0016). */
    static final long EPOCH_AHEAD_MICROS = 24L * 3600 * 1_000_000;
    private static final Pattern TRACEPARENT =
            Pattern.compile("00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}");
    private static final Set<String> NAMES_A_MEMBER =
            Set.of("required", "additionalProperties", "dependentRequired");
    private static final int MOST_UNKNOWN_FIELD_ROUNDS = 16;

    private final PairTopic topic;
    private final Schemas schemas;
    private final ObjectMapper json;
    private final boolean tolerant;
    private final LongSupplier nowMicros;

    EventCheck(PairTopic topic, Schemas schemas, ObjectMapper json, boolean tolerant,
            LongSupplier nowMicros) {
        this.topic = topic;
        this.schemas = schemas;
        this.json = json;
        this.tolerant = tolerant;
        this.nowMicros = nowMicros;
    }

    /** The verdict on one record; {@code ceType}: its {@code ce_type} header, if any. */
    Verdict check(byte[] key, byte[] value, String ceType) {
        Verdict verdict = new Verdict();
        ObjectNode event = parse(value, verdict);
        if (event == null) {
            return verdict;
        }
        verdict.id = text(event, "id");
        verdict.type = text(event, "type");
        envelope(event, verdict);
        key(event, key, verdict);
        numbers(event, verdict);
        if (ceType != null && verdict.type != null && !ceType.equals(verdict.type)) {
            verdict.error("header ce_type", "'" + ceType + "' is not the event's type " + verdict.type);
        }
        schema(event, verdict);
        claims(event, verdict);
        return verdict;
    }

    private ObjectNode parse(byte[] value, Verdict verdict) {
        if (value == null) {
            verdict.error("value", "no value (a tombstone): an event is a JSON object");
            return null;
        }
        String text;
        try {
            text = utf8(value);
        } catch (CharacterCodingException e) {
            verdict.error("value", "not UTF-8 text");
            return null;
        }
        JsonNode document;
        try {
            document = json.readTree(text);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
            verdict.error("value", "not JSON: " + e.getOriginalMessage() + where);
            return null;
        }
        if (document == null || !document.isObject()) {
            verdict.error("value", "an event is a JSON object");
            return null;
        }
        return (ObjectNode) document;
    }

    private void envelope(ObjectNode event, Verdict verdict) {
        JsonNode specversion = event.get("specversion");
        if (absent(specversion)) {
            verdict.error("specversion", "required: \"1.0\" (CloudEvents 1.0)");
        } else if (!specversion.isTextual() || !specversion.asText().equals("1.0")) {
            verdict.error("specversion", "must be \"1.0\" (CloudEvents 1.0), got " + specversion);
        }
        if (absent(event.get("id"))) {
            verdict.error("id", "required: a UUID, unique per source");
        }
        JsonNode source = event.get("source");
        if (absent(source)) {
            verdict.error("source", "required: " + topic.sourceUrn());
        } else if (!source.isTextual() || !source.asText().equals(topic.sourceUrn())) {
            verdict.error("source", source + " on " + topic.name() + ": only node " + topic.source()
                    + " writes there, as " + topic.sourceUrn() + " (a forged or misrouted event)");
        }
        if (absent(event.get("type"))) {
            verdict.error("type", "required: yixian.<area>.<what>.v<N>");
            return;
        }
        if (verdict.type == null) {
            verdict.error("type", "must be a string yixian.<area>.<what>.v<N>, got " + event.get("type"));
            return;
        }
        if (!Schemas.TYPE.matcher(verdict.type).matches()) {
            verdict.error("type", "'" + verdict.type + "' is not of the form yixian.<area>.<what>.v<N>");
            return;
        }
        String schemaUri = Schemas.SCHEMA_PREFIX + verdict.type;
        JsonNode dataschema = event.get("dataschema");
        if (absent(dataschema)) {
            verdict.error("dataschema", "required: " + schemaUri);
        } else if (!dataschema.isTextual() || !dataschema.asText().equals(schemaUri)) {
            verdict.error("dataschema", "must be " + schemaUri + " (the $id of the type's schema), got "
                    + dataschema);
        }
        JsonNode traceparent = event.get("traceparent");
        if (absent(traceparent)) {
            verdict.error("traceparent", "required: the W3C trace context of the change");
        } else if (!traceparent.isTextual() || !TRACEPARENT.matcher(traceparent.asText()).matches()) {
            verdict.error("traceparent", "must be a W3C traceparent 00-<32 hex>-<16 hex>-<2 hex>"
                    + " (lowercase, ids not all zeros), got " + traceparent);
        }
    }

    private void key(ObjectNode event, byte[] key, Verdict verdict) {
        if (key == null) {
            verdict.error("key", "no key: a movement's events are keyed by its id, link events by \"link\"");
            return;
        }
        String text;
        try {
            text = utf8(key);
        } catch (CharacterCodingException e) {
            verdict.error("key", "not UTF-8 text");
            return;
        }
        JsonNode movement = event.get("correlationid");
        if (!absent(movement)) {
            if (!movement.isTextual()) {
                return; // the schema names it
            }
            String expected = movement.asText().toLowerCase(Locale.ROOT);
            if (!text.equals(expected)) {
                verdict.error("key", "'" + text + "' is not the event's movement " + expected
                        + ": one movement's events share its id as key, so they stay in order");
            }
        } else if (!text.equals(LINK_KEY)) {
            verdict.error("key", "'" + text + "': an event about no movement (no correlationid)"
                    + " is keyed \"link\"");
        }
    }

    private void numbers(ObjectNode event, Verdict verdict) {
        JsonNode pairseq = event.get("pairseq");
        if (absent(pairseq)) {
            verdict.error("pairseq", "required on a pair topic: the number the receiver counts"
                    + " to see a gap (docs/adr/0012)");
        } else if (!wholeNumber(pairseq) || pairseq.asLong() < 1) {
            verdict.error("pairseq", "must be a whole number from 1, got " + pairseq);
        } else {
            verdict.pairseq = pairseq.asLong();
        }
        JsonNode pairepoch = event.get("pairepoch");
        if (absent(pairepoch)) {
            return;
        }
        if (!wholeNumber(pairepoch) || pairepoch.asLong() < 0) {
            verdict.error("pairepoch", "must be a whole number from 0, got " + pairepoch);
            return;
        }
        verdict.epoch = pairepoch.asLong();
        if (verdict.epoch > nowMicros.getAsLong() + EPOCH_AHEAD_MICROS) {
            Instant starts = Instant.EPOCH.plus(verdict.epoch, ChronoUnit.MICROS);
            verdict.error("pairepoch", "the link epoch starts at " + starts
                    + ", more than a day from now: refused as a forged claim (docs/adr/0016)");
        }
    }

    private void schema(ObjectNode event, Verdict verdict) {
        if (verdict.type == null || !Schemas.TYPE.matcher(verdict.type).matches()) {
            return;
        }
        Optional<Schema> schema = schemas.of(verdict.type);
        if (schema.isEmpty()) {
            String missing = "no schema " + verdict.type + ".json in " + schemas.folder();
            if (tolerant) {
                verdict.note(missing + ": a type of a later v1, its payload not checked");
            } else {
                verdict.error("type", missing + ": a type the published schemas do not have");
            }
            return;
        }
        JsonNode document = event;
        for (int round = 0; ; round++) {
            List<Error> errors;
            try {
                errors = schema.get().validate(document);
            } catch (RuntimeException e) {
                verdict.error("type", "the schema " + verdict.type + ".json could not be applied: "
                        + e.getMessage());
                return;
            }
            List<Error> unknown = !tolerant || round == MOST_UNKNOWN_FIELD_ROUNDS
                    ? List.of()
                    : errors.stream().filter(EventCheck::unknownField).toList();
            if (unknown.isEmpty()) {
                report(errors, verdict);
                return;
            }
            if (document == event) {
                document = event.deepCopy();
            }
            boolean dropped = false;
            for (Error error : unknown) {
                JsonNode parent = at(document, error.getInstanceLocation());
                if (parent instanceof ObjectNode object && object.remove(error.getProperty()) != null) {
                    dropped = true;
                    verdict.note("unknown field " + field(error) + " left out (a later v1 writer's,"
                            + " docs/adr/0003)");
                }
            }
            if (!dropped) {
                report(errors, verdict);
                return;
            }
        }
    }

    /** The schema's errors, one per field, leaving out fields the envelope rules named. */
    private static void report(List<Error> errors, Verdict verdict) {
        Map<String, List<String>> reasons = new LinkedHashMap<>();
        for (Error error : errors) {
            String field = field(error);
            if (verdict.hasErrorAt(field)) {
                continue;
            }
            List<String> said = reasons.computeIfAbsent(field, f -> new ArrayList<>());
            String reason = reason(error);
            if (!said.contains(reason)) {
                said.add(reason);
            }
        }
        reasons.forEach((field, said) -> verdict.error(field, String.join("; ", said)));
    }

    private static boolean unknownField(Error error) {
        return "additionalProperties".equals(error.getKeyword()) && error.getProperty() != null;
    }

    /** The dotted path of the member an error is about: the instance, or the member a
     * {@code required} or {@code additionalProperties} error names inside it. */
    private static String field(Error error) {
        List<String> parts = new ArrayList<>();
        NodePath path = error.getInstanceLocation();
        for (int i = 0; i < path.getNameCount(); i++) {
            parts.add(String.valueOf(path.getElement(i)));
        }
        if (NAMES_A_MEMBER.contains(error.getKeyword()) && error.getProperty() != null) {
            parts.add(error.getProperty());
        }
        return parts.isEmpty() ? "(root)" : String.join(".", parts);
    }

    private static String reason(Error error) {
        String message = error.getMessage();
        String location = error.getInstanceLocation().toString();
        if (message.startsWith(location + ": ")) {
            message = message.substring(location.length() + 2);
        }
        return message;
    }

    private static JsonNode at(JsonNode document, NodePath path) {
        JsonNode node = document;
        for (int i = 0; i < path.getNameCount() && node != null; i++) {
            Object element = path.getElement(i);
            node = element instanceof Integer index ? node.get(index) : node.get(String.valueOf(element));
        }
        return node;
    }

    /** What a link event says about the numbers sent before it must be below its own
     * number, and a heartbeat names the link it travels on (as the nodes' sync checks). */
    private void claims(ObjectNode event, Verdict verdict) {
        JsonNode data = event.get("data");
        if (data == null || !data.isObject() || verdict.type == null) {
            return;
        }
        if (verdict.type.equals(HEARTBEAT)) {
            names(data, "source", topic.source(), verdict);
            names(data, "destination", topic.destination(), verdict);
            claim(data, "last_sequence", "heartbeat", verdict);
        } else if (verdict.type.equals(DIGEST)) {
            claim(data, "as_of_sequence", "digest", verdict);
        }
    }

    private void names(JsonNode data, String member, String expected, Verdict verdict) {
        JsonNode value = data.get(member);
        String field = "data." + member;
        if (value != null && value.isTextual() && !value.asText().equals(expected)
                && !verdict.hasErrorAt(field)) {
            verdict.error(field, "the heartbeat names the link " + text(data, "source") + " → "
                    + text(data, "destination") + " on the topic of " + topic.source() + " → "
                    + topic.destination());
        }
    }

    private static void claim(JsonNode data, String member, String what, Verdict verdict) {
        JsonNode claimed = data.get(member);
        String field = "data." + member;
        if (verdict.pairseq != null && claimed != null && wholeNumber(claimed)
                && claimed.asLong() >= verdict.pairseq && !verdict.hasErrorAt(field)) {
            verdict.error(field, "the " + what + " claims " + claimed.asLong()
                    + " numbers sent before it, not below its own pairseq " + verdict.pairseq);
        }
    }

    private static boolean absent(JsonNode node) {
        return node == null || node.isNull();
    }

    private static boolean wholeNumber(JsonNode node) {
        return node.isIntegralNumber() && node.canConvertToLong();
    }

    private static String text(JsonNode object, String member) {
        JsonNode value = object.get(member);
        return value != null && value.isTextual() ? value.asText() : null;
    }

    static String utf8(byte[] bytes) throws CharacterCodingException {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes))
                .toString();
    }
}
