package ticketflow;

import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single OpenSearch node on 127.0.0.1 (HTTP port: the first argument, 9200 by default), its data in a new
 * temporary directory, with the two modules search's index needs loaded from the classpath. For tests only:
 * no security plugin, no bootstrap checks.
 */
public class OpenSearchNode {
    static class ClasspathNode extends Node {
        ClasspathNode(Settings settings) {
            super(
                InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "ticketflow-test"),
                List.of(Netty4Plugin.class, CommonAnalysisPlugin.class),
                true
            );
        }
    }

    public static void main(String[] args) throws Exception {
        Settings settings = Settings.builder()
            .put("path.home", Files.createTempDirectory("opensearch-node").toString())
            .put("cluster.name", "ticketflow-test")
            .put("node.name", "ticketflow-test")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", args.length > 0 ? args[0] : "9200")
            .put("transport.type", "netty4")
            .put("http.type", "netty4")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        Node node = new ClasspathNode(settings);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception ignored) {
                // stopping anyway
            }
        }));
        node.start();
        System.out.println("opensearch-node: listening on 127.0.0.1:" + settings.get("http.port"));
        Thread.currentThread().join();
    }
}
