/*
 * test/clients/LicdataJdbcTest.java -- licdata through pgjdbc (run by
 * test/clients/jdbc_test.sh against a cluster loaded with test/clients/fixture.sql).
 *
 *   java -cp DIR:/usr/share/java/postgresql.jar LicdataJdbcTest HOST PORT DB LICENSEE SUPERUSER
 *
 * The licensee connects over TCP with its purpose and consent reference in the
 * URL's "options" parameter (startup GUCs); the superuser connection reads the
 * expected values and licdata.usage / licdata.audit_log.  Prints one PASS or
 * FAIL line per check; exits 0 when every check passed, 1 otherwise.
 */

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;

import org.postgresql.PGStatement;

public class LicdataJdbcTest {
	static int passed = 0, failed = 0;

	static String host, db, licensee, superuser;
	static int port;

	static final String PURPOSE = "credit_assessment";
	static final String CONSENT = "APP-1";
	/* The licensed columns of pd.people, in table order. */
	static final String[] LICENSED = {"person_id", "id_number", "name", "region", "birth"};
	static final String LOOKUP_SQL =
		"SELECT /* jdbc-lookup */ person_id, id_number, name, region, birth FROM pd.people "
		+ "WHERE id_number = licdata.token('pd.people', 'id_number', ?)";

	/* Named (not unnamed) protocol-level prepared statements of the lookup in this session. */
	static final String NAMED_SQL = "SELECT count(*) FROM pg_prepared_statements "
		+ "WHERE statement LIKE '%jdbc-lookup%' AND statement NOT LIKE '%pg_prepared_statements%' AND NOT from_sql";

	interface SqlAction {
		void run() throws Exception;
	}

	static void check(String what, boolean ok, String detail) {
		if (ok) {
			passed++;
			System.out.println("PASS: " + what);
		} else {
			failed++;
			System.out.println("FAIL: " + what + (detail == null ? "" : " -- " + detail));
		}
	}

	static void checkEq(String what, Object expected, Object got) {
		boolean ok = Objects.equals(expected, got);
		check(what, ok, ok ? null : "expected <" + expected + ">, got <" + got + ">");
	}

	/* The action must fail with SQLSTATE state; returns the message. */
	static String expectState(String what, String state, SqlAction action) {
		try {
			action.run();
			check(what + " -> " + state, false, "no error raised");
		} catch (SQLException e) {
			boolean ok = state.equals(e.getSQLState());
			check(what + " -> " + state, ok,
				  ok ? null : "got SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
			return e.getMessage();
		} catch (Exception e) {
			check(what + " -> " + state, false, "unexpected " + e);
		}
		return null;
	}

	/* Runs a check group; an unexpected exception fails the group, not the run. */
	static void group(String title, SqlAction action) {
		System.out.println("-- " + title);
		try {
			action.run();
		} catch (Exception e) {
			check(title + " (no unexpected exception)", false, e.toString());
			e.printStackTrace(System.out);
		}
	}

	static String url(String options) {
		String u = "jdbc:postgresql://" + host + ":" + port + "/" + db;
		return options == null ? u : u + "?options=" + options;
	}

	/* The licensee's URL: purpose and consent reference as startup GUCs. */
	static String licenseeUrl() {
		return url("-c%20licdata.purpose%3D" + PURPOSE + "%20-c%20licdata.consent_ref%3D" + CONSENT);
	}

	static Connection connect(String url, String user) throws SQLException {
		Properties p = new Properties();
		p.setProperty("user", user);
		p.setProperty("ApplicationName", "licdata-jdbc-test");
		return DriverManager.getConnection(url, p);
	}

	static String scalar(Connection c, String sql) throws SQLException {
		try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
			return rs.next() ? rs.getString(1) : null;
		}
	}

	static void exec(Connection c, String sql) throws SQLException {
		try (Statement s = c.createStatement()) {
			s.execute(sql);
		}
	}

	/* What the licensee should see of one person, computed by the superuser. */
	static final class Person {
		long id;
		String rawId, token, name, region, birth;
	}

	static Map<Long, Person> expectedPeople(Connection su, String ids) throws SQLException {
		Map<Long, Person> m = new LinkedHashMap<>();
		String sql = "SELECT person_id, id_number, licdata.mask_pseudonym(id_number, 16, '" + licensee
			+ "'), licdata_internal.mask_cn_name(name), region, date_trunc('month', birth)::date::text "
			+ "FROM pd.people WHERE person_id IN (" + ids + ") ORDER BY person_id";
		try (Statement s = su.createStatement(); ResultSet rs = s.executeQuery(sql)) {
			while (rs.next()) {
				Person p = new Person();
				p.id = rs.getLong(1);
				p.rawId = rs.getString(2);
				p.token = rs.getString(3);
				p.name = rs.getString(4);
				p.region = rs.getString(5);
				p.birth = rs.getString(6);
				m.put(p.id, p);
			}
		}
		return m;
	}

	public static void main(String[] args) throws Exception {
		if (args.length != 5) {
			System.err.println("usage: LicdataJdbcTest HOST PORT DB LICENSEE SUPERUSER");
			System.exit(2);
		}
		host = args[0];
		port = Integer.parseInt(args[1]);
		db = args[2];
		licensee = args[3];
		superuser = args[4];

		try (Connection su = connect(url(null), superuser);
			 Connection c = connect(licenseeUrl(), licensee)) {
			System.out.println("licensee URL: " + licenseeUrl());
			DatabaseMetaData md = c.getMetaData();
			System.out.println("driver: " + md.getDriverName() + " " + md.getDriverVersion()
							   + ", server " + md.getDatabaseProductVersion());
			run(su, c);
		}
		System.out.println("jdbc: " + passed + " passed, " + failed + " failed");
		System.exit(failed == 0 && passed > 0 ? 0 : 1);
	}

	static void run(Connection su, Connection c) throws Exception {
		final long licensedRows = Long.parseLong(scalar(su,
			"SELECT count(*) FROM pd.people WHERE region <> 'xj'"));

		group("startup options reach the session", () -> {
			checkEq("licdata.purpose from the URL options", PURPOSE, scalar(c, "SHOW licdata.purpose"));
			checkEq("licdata.consent_ref from the URL options", CONSENT,
					scalar(c, "SHOW licdata.consent_ref"));
			checkEq("connected as the licensee", licensee, scalar(c, "SELECT session_user"));
		});

		/* Ten licensed people (person_id % 4 <> 3: region is not xj) and one in xj. */
		final long[] lookupIds = {1, 2, 4, 5, 6, 8, 9, 10, 12, 13};
		final long xjId = 3;
		final Map<Long, Person> want = expectedPeople(su, "1,2,3,4,5,6,8,9,10,12,13");
		final PreparedStatement lookup = c.prepareStatement(LOOKUP_SQL);

		group("prepared lookup by licdata.token, 10 executions (named server-side statement from the 5th)", () -> {
			int good = 0;
			for (int i = 0; i < lookupIds.length; i++) {
				Person p = want.get(lookupIds[i]);
				lookup.setString(1, p.rawId);
				List<String> problems = new ArrayList<>();
				int n = 0;
				try (ResultSet rs = lookup.executeQuery()) {
					while (rs.next()) {
						n++;
						if (rs.getLong(1) != p.id) problems.add("person_id " + rs.getLong(1));
						String tok = rs.getString(2);
						if (!p.token.equals(tok)) problems.add("id_number " + tok + " (want " + p.token + ")");
						if (tok != null && (tok.length() != 16 || tok.equals(p.rawId)))
							problems.add("id_number not a 16-character token: " + tok);
						if (!p.name.equals(rs.getString(3)))
							problems.add("name " + rs.getString(3) + " (want " + p.name + ")");
						if (!p.region.equals(rs.getString(4))) problems.add("region " + rs.getString(4));
						if (!p.birth.equals(rs.getString(5)))
							problems.add("birth " + rs.getString(5) + " (want " + p.birth + ")");
					}
				}
				if (n != 1) problems.add(n + " rows");
				boolean named = Long.parseLong(scalar(c, NAMED_SQL)) > 0;
				String what = "execution " + (i + 1) + " (person " + p.id + ", "
					+ (named ? "named server-side statement" : "unnamed statement")
					+ "): one row, masked id_number/name/birth";
				check(what, problems.isEmpty(), String.join("; ", problems));
				if (problems.isEmpty()) good++;
			}
			check("pgjdbc switched to a named server-side statement",
				  lookup.unwrap(PGStatement.class).isUseServerPrepare(), null);
			String named = scalar(c, NAMED_SQL);
			check("the lookup is a named prepared statement in the session (pg_prepared_statements)",
				  Long.parseLong(named) >= 1, "count " + named);

			Person x = want.get(xjId);
			lookup.setString(1, x.rawId);
			int n = 0;
			try (ResultSet rs = lookup.executeQuery()) {
				while (rs.next()) n++;
			}
			checkEq("named statement keeps the row filter: a person in region xj is not found", 0, n);

			/* The raw value matches nothing: id_number is masked in WHERE too. */
			try (PreparedStatement raw = c.prepareStatement(
					"SELECT /* jdbc-raw */ count(*) FROM pd.people WHERE id_number = ?")) {
				raw.setString(1, want.get(1L).rawId);
				try (ResultSet rs = raw.executeQuery()) {
					rs.next();
					checkEq("a raw id number matches no row (the predicate sees the masked value)", 0L,
							rs.getLong(1));
				}
			}
		});

		group("purpose / consent changed mid-session, statement already server-prepared", () -> {
			Person p = want.get(lookupIds[0]);
			lookup.setString(1, p.rawId);
			exec(c, "SET licdata.purpose = 'marketing'");
			expectState("named statement after SET licdata.purpose = 'marketing'", "LD002",
						() -> lookup.executeQuery().close());
			exec(c, "SET licdata.purpose = '" + PURPOSE + "'");
			try (ResultSet rs = lookup.executeQuery()) {
				check("named statement after SET back to " + PURPOSE + " returns the person",
					  rs.next() && rs.getLong(1) == p.id, null);
			}
			/* RESET goes back to the value from the startup options, so clear it with SET. */
			exec(c, "SET licdata.consent_ref = ''");
			expectState("named statement after SET licdata.consent_ref = ''", "LD007",
						() -> lookup.executeQuery().close());
			exec(c, "RESET licdata.consent_ref");
			checkEq("RESET licdata.consent_ref restores the value from the URL options", CONSENT,
					scalar(c, "SHOW licdata.consent_ref"));
			exec(c, "SET licdata.consent_ref = '" + CONSENT + "'");
			/* SET LOCAL inside a transaction (transaction pooling), then back. */
			c.setAutoCommit(false);
			exec(c, "SET LOCAL licdata.purpose = 'marketing'");
			expectState("named statement after SET LOCAL licdata.purpose = 'marketing'", "LD002",
						() -> lookup.executeQuery().close());
			c.rollback();
			c.setAutoCommit(true);
			try (ResultSet rs = lookup.executeQuery()) {
				check("named statement after the transaction ends uses the session purpose again",
					  rs.next() && rs.getLong(1) == p.id, null);
			}
			checkEq("purpose restored", PURPOSE, scalar(c, "SHOW licdata.purpose"));
		});

		final long[] streamed = {-1};
		final long[] partial = {-1};
		final long[] quotaRows = {-1};
		group("streaming with setAutoCommit(false) + setFetchSize(100)", () -> {
			c.setAutoCommit(false);
			try (Statement s = c.createStatement()) {
				s.setFetchSize(100);
				long n = 0, bad = 0;
				try (ResultSet rs = s.executeQuery(
						"SELECT /* jdbc-stream */ person_id, id_number, name, region, birth FROM pd.people")) {
					while (rs.next()) {
						n++;
						String tok = rs.getString(2);
						if (tok == null || tok.length() != 16 || tok.startsWith("1101") || "xj".equals(rs.getString(4)))
							bad++;
					}
				}
				streamed[0] = n;
				checkEq("rows received through the cursor = licensed rows", licensedRows, n);
				checkEq("every streamed row masked and outside region xj", 0L, bad);
			}
			/* Read 250 rows of a 100-row fetch size and close: 300 rows were sent. */
			try (Statement s = c.createStatement()) {
				s.setFetchSize(100);
				long n = 0;
				try (ResultSet rs = s.executeQuery(
						"SELECT /* jdbc-partial */ person_id, id_number FROM pd.people ORDER BY person_id")) {
					while (n < 250 && rs.next()) n++;
				}
				partial[0] = 300;
				checkEq("read 250 rows of a cursor, then closed it", 250L, n);
			}
			/* The quota trips mid-cursor: the rows sent before the error are metered. */
			try (Statement s = c.createStatement()) {
				s.setFetchSize(50);
				long n = 0;
				try (ResultSet rs = s.executeQuery("SELECT /* jdbc-quota-cursor */ * FROM pd.accounts")) {
					while (rs.next()) n++;
					check("cursor over 1000 rows under max_rows_per_query = 100 -> LD006", false,
						  "no error, " + n + " rows");
				} catch (SQLException e) {
					checkEq("cursor over 1000 rows under max_rows_per_query = 100 -> LD006", "LD006",
							e.getSQLState());
				}
				quotaRows[0] = n;
				check("rows received before LD006 within the quota (" + n + ")", n <= 100, null);
			}
			c.rollback();
			c.setAutoCommit(true);
		});

		group("generic plan of a named statement (plan_cache_mode = force_generic_plan)", () -> {
			exec(c, "SET plan_cache_mode = force_generic_plan");
			try (PreparedStatement ps = c.prepareStatement(LOOKUP_SQL.replace("jdbc-lookup", "jdbc-generic"))) {
				ps.unwrap(PGStatement.class).setPrepareThreshold(1);
				for (int i = 0; i < 3; i++) {
					Person p = want.get(lookupIds[i]);
					ps.setString(1, p.rawId);
					try (ResultSet rs = ps.executeQuery()) {
						boolean ok = rs.next() && rs.getLong(1) == p.id && p.token.equals(rs.getString(2))
							&& p.name.equals(rs.getString(3)) && p.birth.equals(rs.getString(5)) && !rs.next();
						check("generic plan, execution " + (i + 1) + ": the person, masked", ok, null);
					}
				}
				ps.setString(1, want.get(lookupIds[0]).rawId);
				exec(c, "SET licdata.purpose = 'marketing'");
				expectState("generic plan after SET licdata.purpose = 'marketing'", "LD002",
							() -> ps.executeQuery().close());
				exec(c, "SET licdata.purpose = '" + PURPOSE + "'");
				exec(c, "SET licdata.consent_ref = ''");
				expectState("generic plan after SET licdata.consent_ref = ''", "LD007",
							() -> ps.executeQuery().close());
				exec(c, "RESET licdata.consent_ref");
				try (ResultSet rs = ps.executeQuery()) {
					check("generic plan after the purpose and consent are back: the person",
						  rs.next() && rs.getLong(1) == lookupIds[0], null);
				}
			} finally {
				exec(c, "RESET plan_cache_mode");
			}
		});

		group("denials carry their SQLSTATE", () -> {
			try (Connection np = connect(url(null), licensee)) {
				expectState("no purpose (connection without options)", "LD001", () -> scalar(np,
					"SELECT /* jdbc-deny */ person_id FROM pd.people LIMIT 1"));
			}
			exec(c, "SET licdata.purpose = 'marketing'");
			expectState("SET licdata.purpose = 'marketing' (unlicensed purpose)", "LD002", () -> scalar(c,
				"SELECT /* jdbc-deny */ person_id FROM pd.people LIMIT 1"));
			exec(c, "SET licdata.purpose = '" + PURPOSE + "'");
			String msg = expectState("SELECT salary", "LD003", () -> scalar(c,
				"SELECT /* jdbc-deny */ salary FROM pd.people LIMIT 1"));
			check("LD003 message names the column", msg != null && msg.contains("salary"), msg);
			expectState("SELECT * (includes salary)", "LD003", () -> scalar(c,
				"SELECT /* jdbc-deny */ * FROM pd.people LIMIT 1"));
			expectState("unlicensed dataset pd.tax_records", "LD005", () -> scalar(c,
				"SELECT /* jdbc-deny */ * FROM pd.tax_records"));
			expectState("quota: 1000 rows under max_rows_per_query = 100", "LD006", () -> {
				try (Statement s = c.createStatement();
					 ResultSet rs = s.executeQuery("SELECT /* jdbc-deny */ * FROM pd.accounts")) {
					while (rs.next()) { }
				}
			});
			checkEq("within the quota: 50 rows of pd.accounts", "50", scalar(c,
				"SELECT count(*) FROM (SELECT * FROM pd.accounts LIMIT 50) a"));
			exec(c, "SET licdata.consent_ref = ''");
			expectState("consent reference cleared (licence requires one)", "LD007", () -> scalar(c,
				"SELECT /* jdbc-deny */ person_id FROM pd.people LIMIT 1"));
			exec(c, "SET licdata.consent_ref = '" + CONSENT + "'");
			checkEq("the connection still works after the denials", "1", scalar(c,
				"SELECT count(*) FROM (SELECT person_id FROM pd.people LIMIT 1) p"));
		});

		group("DatabaseMetaData as the licensee", () -> {
			DatabaseMetaData md = c.getMetaData();
			int tables = 0;
			try (ResultSet rs = md.getTables(null, "pd", "people", new String[] {"TABLE"})) {
				while (rs.next()) tables++;
			}
			checkEq("getTables(pd, people) finds the dataset", 1, tables);
			try (ResultSet rs = md.getColumns(null, "pd", "people", null)) {
				while (rs.next()) {
					tableTypes.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"));
					tableSqlTypes.put(rs.getString("COLUMN_NAME"), rs.getInt("DATA_TYPE"));
					tableSizes.put(rs.getString("COLUMN_NAME"), rs.getInt("COLUMN_SIZE"));
				}
			}
			Map<String, String> real = new LinkedHashMap<>();
			real.put("person_id", "int8");
			real.put("id_number", "varchar");
			real.put("name", "text");
			real.put("region", "text");
			real.put("salary", "numeric");
			real.put("birth", "date");
			for (Map.Entry<String, String> e : real.entrySet())
				checkEq("getColumns: " + e.getKey() + " has its real type", e.getValue(), tableTypes.get(e.getKey()));
			checkEq("getColumns: id_number is varchar(18)", 18, tableSizes.get("id_number"));
			checkEq("licdata.my_licences lists the licence on pd.people", "1", scalar(c,
				"SELECT count(*) FROM licdata.my_licences WHERE dataset = 'pd.people'::regclass"));
		});

		group("ResultSetMetaData of queries over the licensed columns", () -> {
			String cols = String.join(", ", LICENSED);
			try (Statement s = c.createStatement();
				 ResultSet rs = s.executeQuery("SELECT /* jdbc-meta */ " + cols + " FROM pd.people LIMIT 3")) {
				compareMeta("Statement", rs.getMetaData());
			}
			try (PreparedStatement ps = c.prepareStatement(
					"SELECT /* jdbc-meta */ " + cols + " FROM pd.people WHERE person_id = ?")) {
				ps.setLong(1, 1);
				/* Describe before execution, then the executed result. */
				ResultSetMetaData before = ps.getMetaData();
				if (before != null)
					compareMeta("PreparedStatement.getMetaData (Describe)", before);
				else
					check("PreparedStatement.getMetaData (Describe) returns metadata", false, "null");
				try (ResultSet rs = ps.executeQuery()) {
					compareMeta("PreparedStatement result", rs.getMetaData());
				}
			}
			expectState("SELECT * FROM pd.people (includes salary)", "LD003", () -> scalar(c,
				"SELECT * FROM pd.people LIMIT 3"));
		});

		group("metering: usage rows record the rows received", () -> {
			checkEq("licdata.flush() as superuser", "t", scalar(su, "SELECT licdata.flush()"));
			String lic = "'" + licensee + "'::regrole";
			try (Statement s = su.createStatement();
				 ResultSet rs = s.executeQuery(
					 "SELECT count(*), coalesce(sum(rows_delivered), -1), coalesce(sum(rows), -1), "
					 + "bool_and(outcome = 'ok'), bool_and(purpose = '" + PURPOSE + "'), "
					 + "bool_and(consent_ref = '" + CONSENT + "'), "
					 + "bool_and(amount = 1 + rows * 0.001) "
					 + "FROM licdata.usage WHERE licensee = " + lic
					 + " AND statement LIKE '%jdbc-stream%' AND statement NOT LIKE '%licdata.usage%'")) {
				rs.next();
				checkEq("one usage row for the streamed statement", 1L, rs.getLong(1));
				checkEq("usage rows_delivered = rows received (" + streamed[0] + ")", streamed[0], rs.getLong(2));
				checkEq("usage rows (billed) = rows received", streamed[0], rs.getLong(3));
				check("usage outcome ok, purpose and consent_ref recorded", rs.getBoolean(4)
					  && rs.getBoolean(5) && rs.getBoolean(6), null);
				check("usage amount = price_per_query + rows x price_per_row", rs.getBoolean(7), null);
			}
			try (Statement s = su.createStatement();
				 ResultSet rs = s.executeQuery(
					 "SELECT count(*), coalesce(sum(rows_delivered), -1) FROM licdata.usage WHERE licensee = " + lic
					 + " AND statement LIKE '%jdbc-partial%' AND statement NOT LIKE '%licdata.usage%'")) {
				rs.next();
				checkEq("one usage row for the partly read cursor", 1L, rs.getLong(1));
				checkEq("usage rows_delivered = rows sent before the cursor closed (3 fetches of 100)",
						partial[0], rs.getLong(2));
			}
			try (Statement s = su.createStatement();
				 ResultSet rs = s.executeQuery(
					 "SELECT count(*), coalesce(sum(rows_delivered), -1), string_agg(outcome || '/' || "
					 + "coalesce(sqlstate, ''), ',') FROM licdata.usage WHERE licensee = " + lic
					 + " AND statement LIKE '%jdbc-quota-cursor%' AND statement NOT LIKE '%licdata.usage%'")) {
				rs.next();
				checkEq("one usage row for the cursor stopped by LD006", 1L, rs.getLong(1));
				checkEq("its rows_delivered = rows received before the error", quotaRows[0], rs.getLong(2));
				checkEq("its outcome and sqlstate", "error/LD006", rs.getString(3));
			}
			/*
			 * Lookups: 10 licensed executions of one row each, 1 that found
			 * nothing, 1 + 1 LD002/LD007 refusals, 2 more successful runs.
			 */
			try (Statement s = su.createStatement();
				 ResultSet rs = s.executeQuery(
					 "SELECT count(*) FILTER (WHERE outcome = 'ok'), "
					 + "coalesce(sum(rows_delivered) FILTER (WHERE outcome = 'ok'), -1) "
					 + "FROM licdata.usage WHERE licensee = " + lic
					 + " AND statement LIKE '%jdbc-lookup%' AND statement NOT LIKE '%licdata.usage%'")) {
				rs.next();
				checkEq("usage rows of successful lookups (10 + xj miss + 2 after purpose changes)", 13L,
						rs.getLong(1));
				checkEq("usage rows_delivered of the lookups = rows received", 12L, rs.getLong(2));
			}
			checkEq("the licensee sees its streamed statement in licdata.my_usage",
					String.valueOf(streamed[0]), scalar(c,
					"SELECT sum(rows_delivered) FROM licdata.my_usage WHERE statement LIKE '%jdbc-stream%'"
					+ " AND statement NOT LIKE '%my_usage%'"));
			for (String st : new String[] {"LD001", "LD002", "LD003", "LD005", "LD006", "LD007"}) {
				String n = scalar(su, "SELECT count(*) FROM licdata.audit_log WHERE licensee = " + lic
								  + " AND decision = 'deny' AND sqlstate = '" + st + "'");
				check("audit_log has the " + st + " denial", Long.parseLong(n) >= 1, "count " + n);
			}
			checkEq("audit chain verifies", "t", scalar(su, "SELECT ok FROM licdata.verify_audit()"));
		});
		lookup.close();

		/*
		 * Data products: a prepared product call executed 7 times (pgjdbc
		 * switches to a named server-side statement at the 5th), and a
		 * set-returning product read with a fetch size: one usage row per
		 * execution, its calls and the rows the product returned, amount =
		 * price per call x calls + price per row x rows.
		 */
		group("data products through JDBC: metered exactly", () -> {
			final long[] ids = {1, 2, 3, 4, 5, 6, 7};
			try (PreparedStatement ps = c.prepareStatement("SELECT pd.salary_band(?) /* jdbc-product */")) {
				for (long id : ids) {
					ps.setLong(1, id);
					try (ResultSet rs = ps.executeQuery()) {
						rs.next();
						checkEq("salary_band(" + id + ") as the superuser computes it",
								scalar(su, "SELECT pd.salary_band(" + id + ")"), rs.getString(1));
					}
				}
			}
			long setRows = 0;
			c.setAutoCommit(false);
			try (PreparedStatement ps = c.prepareStatement("SELECT * FROM pd.region_members(?, ?) /* jdbc-product-set */")) {
				ps.setFetchSize(2);
				for (String r : new String[] {"bj", "sh"}) {
					ps.setString(1, r);
					ps.setInt(2, 5);
					try (ResultSet rs = ps.executeQuery()) {
						while (rs.next())
							setRows++;
					}
				}
			} finally {
				c.commit();
				c.setAutoCommit(true);
			}
			checkEq("region_members rows received", 10L, setRows);
			checkEq("licdata.flush() as superuser", "t", scalar(su, "SELECT licdata.flush()"));
			String lic = "'" + licensee + "'::regrole";
			try (Statement s = su.createStatement();
				 ResultSet rs = s.executeQuery(
					 "SELECT count(*), sum(calls), sum(rows), sum(amount), bool_and(mode = 'product'), "
					 + "bool_and(consent_ref = '" + CONSENT + "') FROM licdata.usage WHERE licensee = " + lic
					 + " AND statement LIKE '%jdbc-product */%' AND statement NOT LIKE '%licdata.usage%'")) {
				rs.next();
				checkEq("one usage row per execution of the product call", 7L, rs.getLong(1));
				checkEq("calls = executions", 7L, rs.getLong(2));
				checkEq("rows = one per call", 7L, rs.getLong(3));
				checkEq("amount = 7 x (0.5 + 0.1)", "4.2", rs.getBigDecimal(4).stripTrailingZeros().toPlainString());
				check("mode product, consent reference recorded", rs.getBoolean(5) && rs.getBoolean(6), null);
			}
			try (Statement s = su.createStatement();
				 ResultSet rs = s.executeQuery(
					 "SELECT count(*), sum(calls), sum(rows), sum(amount) FROM licdata.usage WHERE licensee = " + lic
					 + " AND statement LIKE '%jdbc-product-set%' AND statement NOT LIKE '%licdata.usage%'")) {
				rs.next();
				checkEq("one usage row per execution of the set product", 2L, rs.getLong(1));
				checkEq("its calls", 2L, rs.getLong(2));
				checkEq("its rows = rows the product returned", 10L, rs.getLong(3));
				checkEq("amount = 2 x 2 + 10 x 0.25", "6.5", rs.getBigDecimal(4).stripTrailingZeros().toPlainString());
			}
		});
	}

	static void compareMeta(String what, ResultSetMetaData m) throws SQLException {
		checkEq(what + ": column count", LICENSED.length, m.getColumnCount());
		for (int i = 1; i <= m.getColumnCount() && i <= LICENSED.length; i++) {
			String col = LICENSED[i - 1];
			checkEq(what + ": " + col + " column name", col, m.getColumnName(i));
			checkEq(what + ": " + col + " type name as in the table", tableTypes.get(col), m.getColumnTypeName(i));
			checkEq(what + ": " + col + " java.sql.Types as in the table", tableSqlTypes.get(col), m.getColumnType(i));
			if (col.equals("id_number"))
				checkEq(what + ": id_number precision as in the table (varchar(18))", tableSizes.get(col),
						m.getPrecision(i));
		}
	}

	/* The table's columns as DatabaseMetaData.getColumns reports them to the licensee. */
	static final Map<String, String> tableTypes = new HashMap<>();
	static final Map<String, Integer> tableSqlTypes = new HashMap<>();
	static final Map<String, Integer> tableSizes = new HashMap<>();
}
