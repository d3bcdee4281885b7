package local.fhirinjection.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.interceptor.api.IInterceptorService;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.IInstanceValidatorModule;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import jakarta.persistence.EntityManagerFactory;
import org.apache.commons.dbcp2.BasicDataSource;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory;
import org.apache.catalina.connector.Connector;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.HashMap;
import java.util.Map;
import javax.sql.DataSource;

/**
 * Spring wiring of the test server: HAPI's JPA/R4/Batch2 configuration plus the few beans HAPI
 * expects the application to provide (settings, data source, entity manager, binary storage), the
 * embedded Tomcat and the FHIR RestfulServer servlet.
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	ThreadPoolFactoryConfig.class,
	// in-memory message broker (LinkedBlockingQueue) that Batch2 jobs such as $export run on
	SubscriptionChannelConfig.class
})
public class HapiServerConfig {

	private static final Logger ourLog = LoggerFactory.getLogger(HapiServerConfig.class);

	static final int DEFAULT_PAGE_SIZE = 20;
	static final int MAX_PAGE_SIZE = 500;

	static int port() {
		return Integer.parseInt(HapiTestServer.setting("hapi.port", "HAPI_PORT", "8080"));
	}

	/** The vendor profiles' "object store" port (export files behind a redirect): FHIR port + 1000. */
	static int filesPort() {
		return Integer.parseInt(HapiTestServer.setting("hapi.files.port", "HAPI_FILES_PORT", String.valueOf(port() + 1000)));
	}

	// ---------------------------------------------------------------- settings

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings settings = new ExpungeEverythingGate.Settings();
		settings.setEnforceReferentialIntegrityOnWrite(true);
		settings.setEnforceReferentialIntegrityOnDelete(true);
		settings.setAutoCreatePlaceholderReferenceTargets(false);
		settings.setAllowExternalReferences(false);
		// every search hits the database: no 60 s reuse of an earlier identical search
		settings.setReuseCachedSearchResultsForMillis(null);
		// NOTE: do not set fetchSizeDefaultMaximum: it caps the TOTAL results of every search (and breaks
		// $export of more than that many resources); the page size cap is the paging provider's job.
		// tests reset the database with POST /fhir/$expunge {expungeEverything: true}
		settings.setExpungeEnabled(true);
		settings.setDeleteExpungeEnabled(true);
		// stays off for normal requests; ExpungeEverythingGate lets $expunge(expungeEverything) through
		settings.setAllowMultipleDelete(false);
		// bulk export ($export) runs as a Batch2 job
		settings.setEnableTaskBulkExportJobExecution(true);
		settings.setEnableBulkExportJobReuse(false);
		// no Lucene/Elasticsearch
		settings.setAdvancedHSearchIndexing(false);
		settings.setHibernateSearchIndexSearchParams(false);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	// ---------------------------------------------------------------- persistence

	@Bean(destroyMethod = "close")
	public BasicDataSource dataSource() {
		BasicDataSource ds = new BasicDataSource();
		ds.setDriverClassName("org.h2.Driver");
		// default: in-memory, gone when the JVM exits; DB_CLOSE_DELAY keeps it while connections close
		ds.setUrl(HapiTestServer.setting("hapi.h2.url", "HAPI_H2_URL", "jdbc:h2:mem:hapi;DB_CLOSE_DELAY=-1"));
		ds.setUsername("sa");
		ds.setPassword("");
		ds.setMaxTotal(30);
		return ds;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			DataSource theDataSource) {
		LocalContainerEntityManagerFactoryBean emf = HapiEntityManagerFactoryUtil.newEntityManagerFactory(
				theBeanFactory, theFhirContext, theStorageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(theDataSource);
		Map<String, Object> props = new HashMap<>();
		props.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		props.put("hibernate.hbm2ddl.auto", "update");
		props.put("hibernate.format_sql", "false");
		props.put("hibernate.show_sql", "false");
		props.put("hibernate.jdbc.batch_size", "20");
		props.put("hibernate.cache.use_query_cache", "false");
		props.put("hibernate.cache.use_second_level_cache", "false");
		props.put("hibernate.cache.use_structured_entries", "false");
		props.put("hibernate.cache.use_minimal_puts", "false");
		props.put("hibernate.search.enabled", "false");
		emf.setJpaPropertyMap(props);
		return emf;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		return new JpaTransactionManager(theEntityManagerFactory);
	}

	/** Where bulk export writes its Binary output. */
	@Bean
	public IBinaryStorageSvc binaryStorageSvc() {
		return new DatabaseBinaryContentStorageSvcImpl();
	}

	/**
	 * Batch2 jobs ($export) advance one gated step per maintenance pass, which HAPI runs once a
	 * minute: an export of a handful of resources would take about four minutes. Run it more often.
	 */
	@Bean
	public static BeanPostProcessor batch2MaintenanceInterval() {
		long millis = Long.parseLong(HapiTestServer.setting("hapi.batch2.maintenance.ms", "HAPI_BATCH2_MAINTENANCE_MS", "5000"));
		return new BeanPostProcessor() {
			@Override
			public Object postProcessAfterInitialization(Object theBean, String theName) {
				if (theBean instanceof JobMaintenanceServiceImpl maintenance) {
					maintenance.setScheduledJobFrequencyMillis(millis);
				}
				return theBean;
			}
		};
	}

	// ---------------------------------------------------------------- web

	@Bean
	public TomcatServletWebServerFactory servletWebServerFactory() throws UnknownHostException {
		TomcatServletWebServerFactory factory = new TomcatServletWebServerFactory(port());
		factory.setAddress(InetAddress.getByName("127.0.0.1"));
		// Accept unencoded '|' (identifier=system|value) and friends in URLs, as Jetty-based HAPI
		// servers do; Tomcat rejects them with an HTML 400 by default.
		factory.addConnectorCustomizers(connector -> {
			connector.setProperty("relaxedQueryChars", "|{}[]^`\"<>\\");
			connector.setProperty("relaxedPathChars", "|{}[]^`\"<>\\");
		});
		// the vendor profiles' stand-in for an object store's pre-signed URLs (see VendorProfileFilter)
		Connector files = new Connector();
		files.setPort(filesPort());
		files.setProperty("address", "127.0.0.1");
		factory.addAdditionalTomcatConnectors(files);
		return factory;
	}

	/** Vendor profiles: /oracle/fhir and /epic/fhir (and /fhir when HAPI_PROFILE names one). */
	@Bean
	public VendorProfileFilter vendorProfiles() {
		return new VendorProfileFilter(port(), filesPort());
	}

	@Bean
	public FilterRegistrationBean<VendorProfileFilter> vendorProfileFilter(VendorProfileFilter theFilter) {
		FilterRegistrationBean<VendorProfileFilter> registration =
				new FilterRegistrationBean<>(theFilter, new ServletRegistrationBean<?>[0]);
		registration.addUrlPatterns("/*");
		registration.setName("vendorProfiles");
		return registration;
	}

	/** The files port's only path: /files/<profile>/Binary/<id> (served on the files port only). */
	@Bean
	public ServletRegistrationBean<jakarta.servlet.http.HttpServlet> filesServlet(VendorProfileFilter theFilter) {
		ServletRegistrationBean<jakarta.servlet.http.HttpServlet> registration =
				new ServletRegistrationBean<>(theFilter.filesServlet(), "/files/*");
		registration.setName("files");
		return registration;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer theServer) {
		// one server, three paths: /fhir (plain, or HAPI_PROFILE), /oracle/fhir and /epic/fhir (VendorProfile)
		ServletRegistrationBean<RestfulServer> registration =
				new ServletRegistrationBean<>(theServer, "/fhir/*", "/oracle/fhir/*", "/epic/fhir/*");
		registration.setName("fhir");
		registration.setLoadOnStartup(1);
		return registration;
	}

	@Bean
	public RestfulServer restfulServer(
			FhirContext theFhirContext,
			IFhirSystemDao<?, ?> theSystemDao,
			ResourceProviderFactory theResourceProviders,
			IJpaSystemProvider theSystemProvider,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider,
			BulkDataExportProvider theBulkDataExportProvider,
			IInstanceValidatorModule theInstanceValidator,
			IInterceptorService theInterceptorService) {
		RestfulServer server = new RestfulServer(theFhirContext);
		server.setServerName("fhir-injection HAPI test server");
		server.setDefaultResponseEncoding(EncodingEnum.JSON);

		server.registerProviders(theResourceProviders.createProviders());
		server.registerProvider(theSystemProvider);
		server.registerProvider(theBulkDataExportProvider);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
		capabilities.setImplementationDescription("HAPI FHIR JPA R4 (integration tests)");
		server.setServerConformanceProvider(capabilities);

		thePagingProvider.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		thePagingProvider.setMaximumPageSize(MAX_PAGE_SIZE);
		server.setPagingProvider(thePagingProvider);

		server.registerInterceptor(new ExpungeEverythingGate.RequestHook());
		// the vendor profiles' search rules hold for every JPA search, batch entries included
		theInterceptorService.registerInterceptor(new VendorProfile.SearchRules());
		ourLog.info("plain /fhir path profile: {}; files port {}", VendorProfile.forPlainPath(), filesPort());

		if (Boolean.parseBoolean(HapiTestServer.setting("hapi.validation", "HAPI_VALIDATION", "true"))) {
			// Validate every incoming resource (transaction bundles included, entry by entry) with
			// HAPI's instance validator on the JPA validation support chain; errors -> 422/400,
			// warnings and information pass.
			RequestValidatingInterceptor validating = new RequestValidatingInterceptor();
			validating.addValidatorModule(theInstanceValidator);
			validating.setFailOnSeverity(ResultSeverityEnum.ERROR);
			validating.setAddResponseHeaderOnSeverity(null);
			server.registerInterceptor(validating);
			warmUpValidator(theFhirContext, theInstanceValidator);
		}
		return server;
	}

	/**
	 * The first validation loads and snapshots the core R4 StructureDefinitions and ValueSets, which
	 * takes several seconds; do it before the port opens so no test request pays for it.
	 */
	private static void warmUpValidator(FhirContext theFhirContext, IInstanceValidatorModule theValidator) {
		long start = System.nanoTime();
		String claim = "{\"resourceType\":\"Claim\",\"status\":\"active\",\"use\":\"claim\","
				+ "\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/claim-type\","
				+ "\"code\":\"professional\"}]},\"patient\":{\"display\":\"warm-up\"},\"created\":\"2024-01-01\","
				+ "\"provider\":{\"display\":\"warm-up\"},\"priority\":{\"coding\":[{\"system\":"
				+ "\"http://terminology.hl7.org/CodeSystem/processpriority\",\"code\":\"normal\"}]},"
				+ "\"insurance\":[{\"sequence\":1,\"focal\":true,\"coverage\":{\"display\":\"warm-up\"}}]}";
		try {
			FhirValidator validator = theFhirContext.newValidator();
			validator.registerValidatorModule(theValidator);
			for (String json : new String[] {claim, "{\"resourceType\":\"Patient\",\"gender\":\"female\"}"}) {
				IBaseResource resource = theFhirContext.newJsonParser().parseResource(json);
				validator.validateWithResult(resource);
			}
			ourLog.info("Validator warmed up in {} ms", (System.nanoTime() - start) / 1_000_000);
		} catch (RuntimeException e) {
			ourLog.warn("Validator warm-up failed (the first request will be slower): {}", e.toString());
		}
	}
}
