// What Yixian's topics, grants and principals cost in a KRaft cluster's metadata: the bytes of
// each record the controller writes (in the metadata log and in every snapshot) and the heap
// of the metadata image that every broker and controller keeps, measured with Kafka's own
// classes. docs/scale.md uses these figures (ops/src/yixian/ops/capacity.py keeps them).
//
// java -Xmx3g -cp "$HOME/.cache/yixian/kafka-4.1.1/libs/*" bench/kafka-metadata/MetadataSize.java
//
// The heap figures are the difference in used heap after a full collection, before and after
// building an image (so they include the image's maps and the records' strings and lists).

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.metadata.AccessControlEntryRecord;
import org.apache.kafka.common.metadata.ConfigRecord;
import org.apache.kafka.common.metadata.PartitionRecord;
import org.apache.kafka.common.metadata.TopicRecord;
import org.apache.kafka.common.metadata.UserScramCredentialRecord;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.record.DefaultRecord;
import org.apache.kafka.common.record.DefaultRecordBatch;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.image.MetadataDelta;
import org.apache.kafka.image.MetadataImage;
import org.apache.kafka.image.MetadataProvenance;
import org.apache.kafka.metadata.MetadataRecordSerde;
import org.apache.kafka.metadata.authorizer.StandardAcl;
import org.apache.kafka.metadata.authorizer.StandardAuthorizer;
import org.apache.kafka.server.common.ApiMessageAndVersion;

public class MetadataSize {
    static final int RF = 3;
    static final int BROKERS = 12;

    static String pairTopic(int i) {
        return String.format("yixian.v1.%06d.to.%06d", 110000 + i % 9000, 410000 + i / 9000);
    }

    static String principal(int i) {
        return String.format("User:node-%06d", 110000 + i);
    }

    static List<Integer> replicas(int i) {
        return List.of(i % BROKERS, (i + 1) % BROKERS, (i + 2) % BROKERS);
    }

    static TopicRecord topic(int i, Uuid id) {
        return new TopicRecord().setName(pairTopic(i)).setTopicId(id);
    }

    static PartitionRecord partition(int i, int p, Uuid id) {
        List<Integer> r = replicas(i + p);
        List<Uuid> dirs = List.of(Uuid.randomUuid(), Uuid.randomUuid(), Uuid.randomUuid());
        return new PartitionRecord().setPartitionId(p).setTopicId(id).setReplicas(r).setIsr(r)
            .setLeader(r.get(0)).setLeaderEpoch(0).setPartitionEpoch(0).setDirectories(dirs);
    }

    static ConfigRecord config(int i, String name, String value) {
        return new ConfigRecord().setResourceType(ConfigResource.Type.TOPIC.id())
            .setResourceName(pairTopic(i)).setName(name).setValue(value);
    }

    static AccessControlEntryRecord acl(int i) {
        return new AccessControlEntryRecord().setId(Uuid.randomUuid())
            .setResourceType(ResourceType.TOPIC.code()).setResourceName(pairTopic(i))
            .setPatternType(PatternType.LITERAL.code()).setPrincipal(principal(i % 3000))
            .setHost("*").setOperation((i % 2 == 0 ? AclOperation.WRITE : AclOperation.READ).code())
            .setPermissionType(AclPermissionType.ALLOW.code());
    }

    static UserScramCredentialRecord user(int i, byte mechanism) {
        return new UserScramCredentialRecord().setName(principal(i).substring(5))
            .setMechanism(mechanism).setSalt(new byte[24]).setStoredKey(new byte[mechanism == 1 ? 32 : 64])
            .setServerKey(new byte[mechanism == 1 ? 32 : 64]).setIterations(8192);
    }

    /** Bytes of one record in the metadata log: its value and its framing in a record batch
     *  (a batch's 61-byte header shared by the records of an 8 KiB batch is left out). */
    static int logBytes(ApiMessage record) {
        int value = MetadataRecordSerde.INSTANCE.recordSize(
            new ApiMessageAndVersion(record, record.highestSupportedVersion()),
            new ObjectSerializationCache());
        return DefaultRecord.sizeInBytes(40, 0L, -1, value, new org.apache.kafka.common.header.Header[0]);
    }

    static long usedHeap() {
        for (int i = 0; i < 4; i++) System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    interface Records { void replay(MetadataDelta delta); }

    static long imageHeap(Records records) {
        long before = usedHeap();
        MetadataDelta delta = new MetadataDelta(MetadataImage.EMPTY);
        records.replay(delta);
        MetadataImage image = delta.apply(MetadataProvenance.EMPTY);
        delta = null;
        long after = usedHeap();
        if (image.isEmpty()) throw new IllegalStateException();
        return after - before;
    }

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 50_000;
        Uuid id = Uuid.randomUuid();
        System.out.println("record bytes in the metadata log (value + framing; batch header 61 B per batch of up to 8 KiB: "
            + DefaultRecordBatch.RECORD_BATCH_OVERHEAD + ")");
        System.out.println("  TopicRecord (pair topic name)        " + logBytes(topic(1, id)));
        System.out.println("  PartitionRecord (RF 3, directories)  " + logBytes(partition(1, 0, id)));
        System.out.println("  ConfigRecord retention.ms=-1         " + logBytes(config(1, "retention.ms", "-1")));
        System.out.println("  ConfigRecord cleanup.policy=delete   " + logBytes(config(1, "cleanup.policy", "delete")));
        System.out.println("  AccessControlEntryRecord (literal)   " + logBytes(acl(1)));
        System.out.println("  UserScramCredentialRecord SHA-256    " + logBytes(user(1, (byte) 1)));
        System.out.println("  UserScramCredentialRecord SHA-512    " + logBytes(user(1, (byte) 2)));

        List<Uuid> ids = new ArrayList<>();
        for (int i = 0; i < n; i++) ids.add(Uuid.randomUuid());
        long one = imageHeap(d -> {
            for (int i = 0; i < n; i++) {
                d.replay(topic(i, ids.get(i)));
                d.replay(partition(i, 0, ids.get(i)));
            }
        });
        long three = imageHeap(d -> {
            for (int i = 0; i < n; i++) {
                d.replay(topic(i, ids.get(i)));
                for (int p = 0; p < 3; p++) d.replay(partition(i, p, ids.get(i)));
            }
        });
        long configs = imageHeap(d -> {
            for (int i = 0; i < n; i++) {
                d.replay(config(i, "retention.ms", "-1"));
                d.replay(config(i, "cleanup.policy", "delete"));
            }
        });
        long acls = imageHeap(d -> { for (int i = 0; i < n; i++) d.replay(acl(i)); });
        long users = imageHeap(d -> {
            for (int i = 0; i < n; i++) { d.replay(user(i, (byte) 1)); d.replay(user(i, (byte) 2)); }
        });
        long before = usedHeap();
        StandardAuthorizer authorizer = new StandardAuthorizer();
        authorizer.configure(Map.of());
        Map<Uuid, StandardAcl> loaded = new HashMap<>();
        for (int i = 0; i < n; i++) {
            AccessControlEntryRecord r = acl(i);
            loaded.put(r.id(), StandardAcl.fromRecord(r));
        }
        authorizer.loadSnapshot(loaded);
        loaded = null;
        long authorizerHeap = usedHeap() - before;
        if (authorizer.aclCount() != n) throw new IllegalStateException();

        System.out.printf("heap of the metadata image, bytes per item (%,d items each)%n", n);
        System.out.printf("  topic with 1 partition (RF 3)        %d%n", one / n);
        System.out.printf("  each further partition               %d%n", (three - one) / (2L * n));
        System.out.printf("  topic config (2 per pair topic)      %d%n", configs / (2L * n));
        System.out.printf("  ACL                                  %d%n", acls / n);
        System.out.printf("  principal (SCRAM-SHA-256 and -512)   %d%n", users / n);
        System.out.printf("heap of the StandardAuthorizer, bytes per ACL   %d%n", authorizerHeap / n);
    }
}
