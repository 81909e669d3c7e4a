package org.yixian.partner;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The command line, checked: every bad value is a {@link UsageError} naming its option. */
record Options(
        String bootstrapServers,
        PairTopic topic,
        String securityProtocol,
        String saslMechanism,
        String username,
        String password,
        String group,
        Path schemas,
        long maxEvents,
        Duration idleTimeout,
        boolean tolerant,
        Map<String, String> properties) {

    static final String PASSWORD_VARIABLE = "YIXIAN_KAFKA_PASSWORD";

    static final String USAGE = String.join("\n",
            "usage: java -jar yixian-partner-consumer.jar --bootstrap-servers HOST:PORT[,...]",
            "           (--topic NAME | --source CODE --destination CODE [--namespace NS])",
            "           --schemas DIR [options]",
            "",
            "Reads a node's pair topic from the start as the destination node's principal and",
            "checks every event: the record key, the CloudEvents envelope, the pair numbers and",
            "the payload against the JSON Schema of its type. One JSON line per event on stdout,",
            "a summary on stderr. Exit status: 0 every event valid, 1 an event invalid,",
            "2 a bad option, 3 the broker refused or did not answer.",
            "",
            "  --bootstrap-servers LIST  the brokers' SASL listener, e.g. 127.0.0.1:19094",
            "  --topic NAME              [<ns>.]yixian.v1.<source>.to.<destination>",
            "  --source CODE             the sending node (6-digit division code), with",
            "  --destination CODE        the receiving node: the partner reading",
            "  --namespace NS            the topic namespace, if the deployment uses one",
            "  --schemas DIR             the published schemas: <type>.json per event type",
            "                            (contracts/schemas/current/v1 in the repository)",
            "  --username USER           default: the destination's principal, [<ns>.]node-<destination>",
            "  --password PASSWORD       default: the environment variable " + PASSWORD_VARIABLE,
            "  --sasl-mechanism M        SCRAM-SHA-512 (default) or SCRAM-SHA-256",
            "  --security-protocol P     SASL_PLAINTEXT (default), SASL_SSL, SSL or PLAINTEXT",
            "  --group ID                default: [<ns>.]yixian.<destination>.partner-consumer",
            "                            (a node's principal may use only groups yixian.<node>.*)",
            "  --max-events N            stop after N events",
            "  --idle-timeout SECONDS    stop when nothing came for this long (default 10)",
            "  --tolerant                read as a node does (ADR 3): fields and event types the",
            "                            schemas do not know are noted and left out, not errors",
            "  --property KEY=VALUE      any Kafka consumer setting (repeatable), e.g.",
            "                            ssl.truststore.location=/path/to/truststore.p12",
            "  --help                    this text");

    private static final Set<String> PROTOCOLS = Set.of("SASL_PLAINTEXT", "SASL_SSL", "SSL", "PLAINTEXT");
    private static final Set<String> MECHANISMS = Set.of("SCRAM-SHA-512", "SCRAM-SHA-256");
    private static final Set<String> FLAGS = Set.of("--tolerant", "--help");
    private static final Set<String> VALUED = Set.of(
            "--bootstrap-servers", "--topic", "--source", "--destination", "--namespace",
            "--schemas", "--username", "--password", "--sasl-mechanism", "--security-protocol",
            "--group", "--max-events", "--idle-timeout", "--property");
    /** Settings the consumer owns: what it reads and how it authenticates. */
    private static final Set<String> OWN_PROPERTIES = Set.of(
            "bootstrap.servers", "group.id", "key.deserializer", "value.deserializer",
            "security.protocol", "sasl.mechanism", "sasl.jaas.config", "enable.auto.commit");

    /** The options, or null when only --help was asked for. */
    static Options parse(List<String> args, Map<String, String> env) throws UsageError {
        Map<String, String> given = new LinkedHashMap<>();
        Map<String, String> properties = new LinkedHashMap<>();
        boolean tolerant = false;
        for (int i = 0; i < args.size(); i++) {
            String arg = args.get(i);
            String name = arg;
            String value = null;
            int equals = arg.indexOf('=');
            if (arg.startsWith("--") && equals > 0) {
                name = arg.substring(0, equals);
                value = arg.substring(equals + 1);
            }
            if (FLAGS.contains(name)) {
                if (value != null) {
                    throw new UsageError(name + " takes no value");
                }
                if (name.equals("--help")) {
                    return null;
                }
                tolerant = true;
                continue;
            }
            if (!VALUED.contains(name)) {
                throw new UsageError("unknown option " + PairTopic.quoted(arg));
            }
            if (value == null) {
                if (i + 1 >= args.size()) {
                    throw new UsageError(name + " needs a value");
                }
                value = args.get(++i);
            }
            if (name.equals("--property")) {
                property(value, properties);
            } else if (given.put(name, value) != null) {
                throw new UsageError(name + " is given twice");
            }
        }

        String servers = required(given, "--bootstrap-servers");
        for (String server : servers.split(",", -1)) {
            if (!server.matches("[^\\s:,]+:\\d{1,5}")) {
                throw new UsageError("--bootstrap-servers: " + PairTopic.quoted(server)
                        + " is not HOST:PORT");
            }
        }
        PairTopic topic = topic(given);
        String protocol = choice(given, "--security-protocol", "SASL_PLAINTEXT", PROTOCOLS);
        String mechanism = choice(given, "--sasl-mechanism", "SCRAM-SHA-512", MECHANISMS);
        boolean sasl = protocol.startsWith("SASL_");
        String username = given.getOrDefault("--username", topic.readerPrincipal());
        String password = given.get("--password");
        if (password == null) {
            password = env.get(PASSWORD_VARIABLE);
        }
        if (sasl && (password == null || password.isEmpty())) {
            throw new UsageError("no password for " + username + ": set " + PASSWORD_VARIABLE
                    + " (or --password)");
        }
        if (username.isBlank() || username.chars().anyMatch(Character::isISOControl)) {
            throw new UsageError("--username must be a user name, got " + PairTopic.quoted(username));
        }
        String group = given.getOrDefault("--group", topic.groupPrefix() + "partner-consumer");
        if (group.isBlank() || group.chars().anyMatch(Character::isISOControl)) {
            throw new UsageError("--group must be a group id, got " + PairTopic.quoted(group));
        }
        Path schemas = Path.of(required(given, "--schemas"));
        if (!Files.isDirectory(schemas)) {
            throw new UsageError("--schemas " + schemas + " is not a directory");
        }
        long maxEvents = 0;
        if (given.containsKey("--max-events")) {
            maxEvents = positive(given, "--max-events");
        }
        Duration idle = Duration.ofSeconds(10);
        if (given.containsKey("--idle-timeout")) {
            idle = Duration.ofSeconds(positive(given, "--idle-timeout"));
        }
        return new Options(servers, topic, protocol, mechanism, username, sasl ? password : null,
                group, schemas, maxEvents, idle, tolerant, properties);
    }

    private static PairTopic topic(Map<String, String> given) throws UsageError {
        String named = given.get("--topic");
        boolean byCodes = given.containsKey("--source") || given.containsKey("--destination");
        if (named != null) {
            if (byCodes || given.containsKey("--namespace")) {
                throw new UsageError("--topic names the topic whole: give it, or --source and"
                        + " --destination (with --namespace), not both");
            }
            return PairTopic.parse(named);
        }
        if (!byCodes) {
            throw new UsageError("--topic, or --source and --destination, is required");
        }
        return PairTopic.of(given.getOrDefault("--namespace", ""),
                required(given, "--source"), required(given, "--destination"));
    }

    private static void property(String setting, Map<String, String> properties) throws UsageError {
        int equals = setting.indexOf('=');
        if (equals <= 0) {
            throw new UsageError("--property " + PairTopic.quoted(setting) + " is not KEY=VALUE");
        }
        String key = setting.substring(0, equals).trim();
        if (OWN_PROPERTIES.contains(key)) {
            throw new UsageError("--property " + key + ": set by the consumer itself"
                    + " (use its own option, if it has one)");
        }
        properties.put(key, setting.substring(equals + 1));
    }

    private static String required(Map<String, String> given, String name) throws UsageError {
        String value = given.get(name);
        if (value == null || value.isBlank()) {
            throw new UsageError(name + " is required");
        }
        return value;
    }

    private static String choice(Map<String, String> given, String name, String fallback,
            Set<String> allowed) throws UsageError {
        String value = given.getOrDefault(name, fallback);
        if (!allowed.contains(value)) {
            throw new UsageError(name + " must be one of " + String.join(", ", allowed.stream().sorted().toList())
                    + ", got " + PairTopic.quoted(value));
        }
        return value;
    }

    private static long positive(Map<String, String> given, String name) throws UsageError {
        String value = given.get(name);
        try {
            long number = Long.parseLong(value);
            if (number > 0) {
                return number;
            }
        } catch (NumberFormatException ignored) {
            // told below
        }
        throw new UsageError(name + " must be a whole number above 0, got " + PairTopic.quoted(value));
    }
}
