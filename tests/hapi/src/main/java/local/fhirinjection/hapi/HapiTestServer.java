package local.fhirinjection.hapi;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.WebApplicationType;

/**
 * Entry point of the integration-test FHIR server.
 *
 * <p>Starts an embedded Tomcat on 127.0.0.1 with a HAPI FHIR JPA (R4, H2) RestfulServer at /fhir/*.
 * No Spring Boot auto-configuration is used: every bean comes from HAPI's own configuration classes
 * plus {@link HapiServerConfig}.
 *
 * <p>Settings (system properties win over environment variables):
 * <ul>
 *   <li>{@code -Dhapi.port} / {@code HAPI_PORT}: TCP port, default 8080 (address is always 127.0.0.1)</li>
 *   <li>{@code -Dhapi.h2.url} / {@code HAPI_H2_URL}: JDBC URL, default an in-memory H2 database</li>
 *   <li>{@code -Dhapi.validation} / {@code HAPI_VALIDATION}: "true" (default) or "false" to turn the
 *       request validator off</li>
 * </ul>
 */
public final class HapiTestServer {

	private static final Logger ourLog = LoggerFactory.getLogger(HapiTestServer.class);

	private HapiTestServer() {}

	/** Reads a setting from a system property, then an environment variable, then the default. */
	static String setting(String theProperty, String theEnv, String theDefault) {
		String value = System.getProperty(theProperty);
		if (value == null || value.isBlank()) {
			value = System.getenv(theEnv);
		}
		return value == null || value.isBlank() ? theDefault : value.trim();
	}

	public static void main(String[] theArgs) {
		long start = System.nanoTime();
		// A bare port number as first argument is accepted too: java -jar x.jar 8081
		if (theArgs.length > 0 && theArgs[0].matches("\\d+")) {
			System.setProperty("hapi.port", theArgs[0]);
		}
		SpringApplication app = new SpringApplication(HapiServerConfig.class);
		app.setWebApplicationType(WebApplicationType.SERVLET);
		// HAPI's configuration classes reference each other in cycles
		app.setAllowCircularReferences(true);
		app.setBannerMode(org.springframework.boot.Banner.Mode.OFF);
		app.setRegisterShutdownHook(true);
		app.run(theArgs);
		ourLog.info(
				"HAPI FHIR test server ready at http://127.0.0.1:{}/fhir after {} ms",
				HapiServerConfig.port(),
				(System.nanoTime() - start) / 1_000_000);
	}
}
