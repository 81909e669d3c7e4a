package org.yixian.partner;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A partner's reference consumer: reads one pair topic from the start as the destination
 * node's principal, checks every event and prints one JSON line per event. See README.md.
 */
public final class Main {
    static final int VALID = 0;
    static final int INVALID = 1;
    static final int BAD_OPTION = 2;
    static final int BROKER_REFUSED = 3;
    private static final String NAME = "yixian-partner-consumer";
    private static final Duration POLL = Duration.ofMillis(200);
    private static final Duration METADATA_TIMEOUT = Duration.ofSeconds(30);

    private final Options options;
    private final ObjectMapper json;
    private final EventCheck check;
    private final Numbering numbering = new Numbering();
    private final PrintStream out;
    private final PrintStream err;

    private Main(Options options, Schemas schemas, ObjectMapper json, PrintStream out, PrintStream err) {
        this.options = options;
        this.json = json;
        this.check = new EventCheck(options.topic(), schemas, json, options.tolerant(),
                () -> System.currentTimeMillis() * 1000);
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        System.exit(run(List.of(args), System.getenv(), out, err));
    }

    static int run(List<String> args, Map<String, String> env, PrintStream out, PrintStream err) {
        ObjectMapper json = JsonMapper.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .build();
        Options options;
        Schemas schemas;
        try {
            options = Options.parse(args, env);
            if (options == null) {
                out.println(Options.USAGE);
                return VALID;
            }
            schemas = Schemas.load(options.schemas(), json);
        } catch (UsageError e) {
            err.println(NAME + ": " + e.getMessage());
            err.println("(--help lists the options)");
            return BAD_OPTION;
        }
        try {
            return new Main(options, schemas, json, out, err).consume();
        } catch (ConfigException e) {
            err.println(NAME + ": a consumer setting (--property) is wrong: " + e.getMessage());
            return BAD_OPTION;
        } catch (AuthenticationException e) {
            err.println(NAME + ": cannot log in to " + options.bootstrapServers() + " as "
                    + options.username() + " (" + options.saslMechanism() + "): " + e.getMessage());
        } catch (TopicAuthorizationException e) {
            PairTopic topic = options.topic();
            String why = options.username().equals(topic.readerPrincipal())
                    ? "no such topic, or its grants are missing (`yixian partner link " + topic.source()
                            + " " + topic.destination() + "` creates both)"
                    : "only the destination node's principal, " + topic.readerPrincipal()
                            + ", may (docs/adr/0009)";
            err.println(NAME + ": " + options.username() + " may not read " + topic.name() + ": " + why);
        } catch (GroupAuthorizationException e) {
            err.println(NAME + ": " + options.username() + " may not use the consumer group "
                    + options.group() + ": a node's principal may use only groups starting with "
                    + options.topic().groupPrefix());
        } catch (TimeoutException e) {
            err.println(NAME + ": no answer from " + options.bootstrapServers() + ": " + e.getMessage());
        } catch (KafkaException e) {
            if (e.getCause() != null && e.getMessage() != null && e.getMessage().startsWith("Failed to construct")) {
                List<String> why = new ArrayList<>();
                for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
                    String message = cause.getMessage() == null ? null
                            : cause.getMessage().replaceAll("(?:[a-z0-9]+\\.)+[A-Z]\\w*: ", "");
                    if (message != null && why.stream().noneMatch(said -> said.contains(message))) {
                        why.add(message);
                    }
                }
                err.println(NAME + ": a consumer setting is wrong: " + String.join(": ", why));
                return BAD_OPTION;
            }
            err.println(NAME + ": the broker refused: " + e.getMessage());
        }
        return BROKER_REFUSED;
    }

    private int consume() {
        String topic = options.topic().name();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(settings())) {
            int partitions = consumer.partitionsFor(topic, METADATA_TIMEOUT).size();
            if (partitions == 0) {
                err.println(NAME + ": no topic " + topic + " on " + options.bootstrapServers()
                        + " (`yixian partner link " + options.topic().source() + " "
                        + options.topic().destination() + "` creates it)");
                return BROKER_REFUSED;
            }
            FromTheStart reader = new FromTheStart(consumer, partitions);
            consumer.subscribe(List.of(topic), reader);
            long events = 0;
            long invalid = 0;
            long lastHeard = System.nanoTime();
            String stopped = "idle";
            reading:
            while (true) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(POLL);
                if (reader.shared) {
                    err.println(NAME + ": the consumer group " + options.group() + " has another"
                            + " member, which takes some of the partitions: give this check a group"
                            + " of its own (--group " + options.topic().groupPrefix() + "<name>)");
                    return BAD_OPTION;
                }
                if (records.isEmpty()) {
                    if (Duration.ofNanos(System.nanoTime() - lastHeard).compareTo(options.idleTimeout()) >= 0) {
                        break;
                    }
                    continue;
                }
                lastHeard = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> record : records) {
                    if (!report(record)) {
                        invalid++;
                    }
                    reader.read(record);
                    events++;
                    if (options.maxEvents() > 0 && events >= options.maxEvents()) {
                        stopped = "max-events";
                        break reading;
                    }
                }
            }
            summary(events, invalid, stopped);
            return invalid > 0 ? INVALID : VALID;
        }
    }

    /** Check one record and print its line; whether it was valid. */
    private boolean report(ConsumerRecord<byte[], byte[]> record) {
        Header ceType = record.headers().lastHeader("ce_type");
        Verdict verdict = check.check(record.key(), record.value(),
                ceType == null ? null : lenient(ceType.value()));
        numbering.record(record.partition(), record.offset(), verdict);
        ObjectNode line = json.createObjectNode();
        line.put("partition", record.partition());
        line.put("offset", record.offset());
        line.put("key", lenient(record.key()));
        line.put("type", verdict.type);
        line.put("id", verdict.id);
        if (verdict.pairseq != null) {
            line.put("pairseq", verdict.pairseq);
            line.put("pairepoch", verdict.epoch);
        }
        line.put("valid", verdict.valid());
        ArrayNode errors = line.putArray("errors");
        for (Problem problem : verdict.errors()) {
            errors.addObject().put("field", problem.field()).put("reason", problem.reason());
        }
        ArrayNode notes = line.putArray("notes");
        verdict.notes().forEach(notes::add);
        out.println(write(line));
        return verdict.valid();
    }

    private void summary(long events, long invalid, String stopped) {
        ObjectNode summary = json.createObjectNode();
        ObjectNode body = summary.putObject("summary");
        body.put("topic", options.topic().name());
        body.put("user", options.username());
        body.put("group", options.group());
        body.put("events", events);
        body.put("valid", events - invalid);
        body.put("invalid", invalid);
        body.put("stopped", stopped);
        body.set("epochs", numbering.summary(json));
        err.println(write(summary));
    }

    private Properties settings() {
        Properties settings = new Properties();
        settings.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrapServers());
        settings.put(ConsumerConfig.GROUP_ID_CONFIG, options.group());
        settings.put(ConsumerConfig.CLIENT_ID_CONFIG, NAME);
        settings.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        settings.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // It checks; it takes no ownership of the group's progress: nothing is committed.
        settings.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        settings.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        settings.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        settings.put("security.protocol", options.securityProtocol());
        if (options.securityProtocol().startsWith("SASL_")) {
            settings.put("sasl.mechanism", options.saslMechanism());
            settings.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule"
                    + " required username=\"" + jaas(options.username()) + "\" password=\""
                    + jaas(options.password()) + "\";");
        }
        settings.putAll(options.properties());
        return settings;
    }

    private static String jaas(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    private String write(ObjectNode node) {
        try {
            return json.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a tree of plain values always serializes", e);
        }
    }

    private static String lenient(byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        try {
            return EventCheck.utf8(bytes);
        } catch (CharacterCodingException e) {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    }

    /**
     * Every partition is read from its first record, and on where this run left it when the
     * group gives it back (nothing is committed, so the group cannot say). A check must read
     * every partition: a member that is given fewer than all of them shares the group with
     * another consumer, which reads the rest.
     */
    private static final class FromTheStart implements ConsumerRebalanceListener {
        private final KafkaConsumer<byte[], byte[]> consumer;
        private final int partitions;
        private final Map<TopicPartition, Long> next = new HashMap<>();
        volatile boolean shared;

        FromTheStart(KafkaConsumer<byte[], byte[]> consumer, int partitions) {
            this.consumer = consumer;
            this.partitions = partitions;
        }

        void read(ConsumerRecord<byte[], byte[]> record) {
            next.put(new TopicPartition(record.topic(), record.partition()), record.offset() + 1);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
            for (TopicPartition partition : assigned) {
                Long offset = next.get(partition);
                if (offset == null) {
                    consumer.seekToBeginning(List.of(partition));
                } else {
                    consumer.seek(partition, offset);
                }
            }
            if (consumer.assignment().size() < partitions) {
                shared = true;
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
            // nothing was committed, nothing to hand over
        }
    }
}
