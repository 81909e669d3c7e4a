package org.yixian.partner;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SchemaRegistryConfig;
import com.networknt.schema.SpecificationVersion;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The published JSON Schemas, one per event type: {@code <type>.json} in one folder, each the
 * schema of the whole event (envelope and payload), draft 2020-12, its {@code $id}
 * {@code urn:yixian:schema:<type>}. Formats (uuid, date, date-time, email) are asserted, not
 * merely annotated: a partner must reject an id that is not a UUID or a time without a zone.
 */
final class Schemas {
    static final Pattern TYPE = Pattern.compile("yixian\\.[a-z_]+\\.[a-z_]+\\.v\\d+");
    static final String SCHEMA_PREFIX = "urn:yixian:schema:";
    private static final String DIALECT = "https://json-schema.org/draft/2020-12/schema";

    private final Path folder;
    private final Map<String, Schema> byType;

    private Schemas(Path folder, Map<String, Schema> byType) {
        this.folder = folder;
        this.byType = byType;
    }

    static Schemas load(Path folder, ObjectMapper json) throws UsageError {
        SchemaRegistryConfig config = SchemaRegistryConfig.builder()
                .formatAssertionsEnabled(true)
                .preloadSchema(true)
                .build();
        // The schemas refer only within themselves: nothing is fetched from the network.
        SchemaRegistry registry = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12,
                builder -> builder.schemaRegistryConfig(config)
                        .schemaLoader(loader -> loader.fetchRemoteResources(false)));
        Map<String, Schema> byType = new TreeMap<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(folder, "*.json")) {
            for (Path file : files) {
                String type = file.getFileName().toString().replaceFirst("\\.json$", "");
                if (!TYPE.matcher(type).matches()) {
                    continue; // not an event schema (e.g. an AsyncAPI document beside them)
                }
                byType.put(type, schema(registry, json, file, type));
            }
        } catch (IOException e) {
            throw new UsageError("--schemas " + folder + ": cannot read it: " + e.getMessage());
        }
        if (byType.isEmpty()) {
            throw new UsageError("--schemas " + folder
                    + " holds no event schema (yixian.<area>.<what>.v<N>.json)");
        }
        return new Schemas(folder, byType);
    }

    private static Schema schema(SchemaRegistry registry, ObjectMapper json, Path file, String type)
            throws UsageError {
        JsonNode document;
        try {
            document = json.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new UsageError("--schemas: " + file + " is not JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UsageError("--schemas: cannot read " + file + ": " + e.getMessage());
        }
        if (document == null || !document.isObject()) {
            throw new UsageError("--schemas: " + file + " is not a JSON Schema (an object)");
        }
        String id = document.path("$id").asText();
        if (!id.equals(SCHEMA_PREFIX + type)) {
            throw new UsageError("--schemas: " + file + " has $id " + PairTopic.quoted(id)
                    + ", expected " + SCHEMA_PREFIX + type);
        }
        String dialect = document.path("$schema").asText();
        if (!dialect.equals(DIALECT)) {
            throw new UsageError("--schemas: " + file + " is of dialect " + PairTopic.quoted(dialect)
                    + ", expected " + DIALECT);
        }
        try {
            Schema schema = registry.getSchema(document);
            schema.validate(json.createObjectNode()); // resolves its references now, not mid-run
            return schema;
        } catch (RuntimeException e) {
            throw new UsageError("--schemas: " + file + " is not a usable schema: " + e.getMessage());
        }
    }

    Optional<Schema> of(String type) {
        return Optional.ofNullable(byType.get(type));
    }

    Path folder() {
        return folder;
    }

    int size() {
        return byType.size();
    }
}
