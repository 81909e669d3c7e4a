package org.yixian.partner;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A pair topic, {@code [<namespace>.]yixian.v1.<source>.to.<destination>}: written only by the
 * source node, read only by the destination (docs/adr/0004, 0009). The namespace, when a
 * deployment or a test uses one, prefixes the topic, the principal and the consumer groups.
 */
record PairTopic(String namespace, String source, String destination) {
    private static final String NAMESPACE = "[a-z0-9][a-z0-9_-]{0,62}";
    private static final Pattern NAME =
            Pattern.compile("(?:(" + NAMESPACE + ")\\.)?yixian\\.v1\\.(\\d{6})\\.to\\.(\\d{6})");
    private static final Pattern CODE = Pattern.compile("\\d{6}");

    static PairTopic of(String namespace, String source, String destination) throws UsageError {
        if (!namespace.isEmpty() && !namespace.matches(NAMESPACE)) {
            throw new UsageError("--namespace " + quoted(namespace)
                    + ": lowercase letters, digits, - and _ (at most 63, not starting with - or _)");
        }
        code("--source", source);
        code("--destination", destination);
        if (source.equals(destination)) {
            throw new UsageError("--source and --destination are both " + source
                    + ": a pair topic links two different nodes");
        }
        return new PairTopic(namespace, source, destination);
    }

    static PairTopic parse(String topic) throws UsageError {
        Matcher match = NAME.matcher(topic);
        if (!match.matches()) {
            throw new UsageError("--topic " + quoted(topic)
                    + " is not a pair topic: [<namespace>.]yixian.v1.<source>.to.<destination>,"
                    + " with 6-digit division codes");
        }
        String namespace = match.group(1) == null ? "" : match.group(1);
        return of(namespace, match.group(2), match.group(3));
    }

    private static void code(String option, String value) throws UsageError {
        if (!CODE.matcher(value).matches()) {
            throw new UsageError(option + " must be a 6-digit division code, got " + quoted(value));
        }
    }

    private String prefix() {
        return namespace.isEmpty() ? "" : namespace + ".";
    }

    String name() {
        return prefix() + "yixian.v1." + source + ".to." + destination;
    }

    /** The CloudEvents {@code source} every event on this topic carries. */
    String sourceUrn() {
        return "urn:yixian:node:" + source;
    }

    /** The destination node's Kafka user, the only principal that may read this topic. */
    String readerPrincipal() {
        return prefix() + "node-" + destination;
    }

    /** Every consumer group the reader may use starts with this. */
    String groupPrefix() {
        return prefix() + "yixian." + destination + ".";
    }

    static String quoted(String value) {
        return "'" + value + "'";
    }
}
