--
-- masks: every masking function called directly (src/mask.c).
--
-- Keys are random per cluster, so keyed results (pseudonym, fpe, noise) are
-- checked by their properties (shape, determinism, round trip, bounds,
-- licensee separation), never by value.  The master key is not rotated
-- here: that would change other test files' tokens mid-run.
--
-- quietly: another test file may have created it already
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;

CREATE ROLE mask_bank NOLOGIN;
CREATE ROLE mask_shop NOLOGIN;
CREATE ROLE mask_analyst NOLOGIN IN ROLE mask_bank;
CREATE ROLE mask_nobody NOLOGIN;
CREATE ROLE mask_op NOLOGIN IN ROLE licdata_operator;
SELECT licdata.register_licensee('mask_bank', 'Mask Bank');
SELECT licdata.register_licensee('mask_shop', 'Mask Shop');

--
-- redact
--
SELECT licdata_internal.mask_redact('secret'::text) IS NULL AS redacted,
       licdata_internal.mask_redact('secret'::text, 'xxx') AS constant,
       licdata_internal.mask_redact(42, 0) AS int_constant,
       licdata_internal.mask_redact(NULL::integer, 7) AS null_value_gets_constant,
       pg_typeof(licdata_internal.mask_redact(now(), '2000-01-01'::timestamptz)) AS keeps_type;

--
-- partial: characters, not bytes; at least one character hidden
--
SELECT v, licdata_internal.mask_partial(v) AS default_1_1,
       licdata_internal.mask_partial(v, 3, 4, '*') AS keep_3_4,
       licdata_internal.mask_partial(v, 0, 0, '#') AS hide_all
  FROM (VALUES (''), ('a'), ('ab'), ('abc'), ('abcdefghij'), ('张三丰'), ('a张b三c丰'),
               ('1234567'), ('13812341234')) t(v);
SELECT licdata_internal.mask_partial('张三丰', 1, 0, '某') AS cjk_pad,
       licdata_internal.mask_partial('abcd', 1, 1, '<>') AS two_char_pad,
       licdata_internal.mask_partial('abcd', 1, 1, '') AS empty_pad,
       licdata_internal.mask_partial('abcdef', 0, 10, '*') AS keep_last_only,
       licdata_internal.mask_partial('abcd', 2147483647, 2147483647, '*') AS int_max_keeps;
SELECT licdata_internal.mask_partial('abc', -1, 1, '*');
SELECT licdata_internal.mask_partial('abc', 1, -1, '*');
SELECT licdata_internal.mask_partial(NULL, 1, 1, '*') IS NULL AS null_in_null_out;
SELECT length(m) AS chars, octet_length(m) AS bytes, left(m, 3) AS head, right(m, 3) AS tail
  FROM (SELECT licdata_internal.mask_partial(repeat('张', 100000), 2, 1, '*') AS m) s;

--
-- email
--
SELECT v, licdata_internal.mask_email(v)
  FROM (VALUES ('zhang.san@example.cn'), ('a@example.cn'), ('ab@example.cn'), ('@example.cn'),
               ('no-at-sign'), (''), ('张三@例子.中国'), ('"a@b"@example.cn'),
               ('first.last+tag@sub.example.com')) t(v);
SELECT licdata_internal.mask_email(NULL) IS NULL AS null_in_null_out;
SELECT length(licdata_internal.mask_email(repeat('x', 100000) || '@example.cn')) AS long_local;

--
-- cn_mobile
--
SELECT v, licdata_internal.mask_cn_mobile(v)
  FROM (VALUES ('13812341234'), ('+8613812341234'), ('+86 13812341234'), ('8613812341234'),
               ('0086-13812341234'), ('138-1234-5678'), ('138 1234 5678'),
               ('１３８１２３４５６７８'), ('010-12345678'), ('23812341234'),
               ('138123412345'), ('12345'), ('1234'), ('手机13812341234'), ('abc'), ('')) t(v);
SELECT licdata_internal.mask_cn_mobile(NULL) IS NULL AS null_in_null_out;

--
-- cn_id (GB 11643): 18 characters keep 6 + 4, 15 digits keep 6 + 3,
-- anything else keeps a quarter at each end
--
SELECT v, licdata_internal.mask_cn_id(v)
  FROM (VALUES ('11010519491231002X'), ('11010519491231002x'), ('110105194912310021'),
               ('110105491231002'), ('11010519491231002'), ('11010519491231002Y'),
               ('E12345678'), ('abc'), ('a'), (''), ('一二三四五六七八')) t(v);
SELECT licdata_internal.mask_cn_id(NULL) IS NULL AS null_in_null_out;

--
-- cn_name: surname kept (compound surnames when the name is longer),
-- Latin names keep their first word
--
SELECT v, licdata_internal.mask_cn_name(v)
  FROM (VALUES ('张三丰'), ('张三'), ('张'), ('欧阳修'), ('欧阳娜娜'), ('欧阳'), ('司马相如'),
               ('諸葛亮'), ('爱新觉罗溥仪'), ('上官婉儿'), ('艾力·买买提'),
               ('Zhang San'), ('John Ronald Tolkien'), ('Madonna'), ('Éowyn Rohan'),
               (' Zhang'), ('')) t(v);
SELECT licdata_internal.mask_cn_name(NULL) IS NULL AS null_in_null_out;
SELECT length(m) AS chars, left(m, 3) AS head
  FROM (SELECT licdata_internal.mask_cn_name(repeat('张', 100000)) AS m) s;

--
-- the variants keyed by the session's licensee are not granted to PUBLIC:
-- a licensee could tabulate them (hostile_oracles tests every route).  This
-- file grants them to its own roles to test the masking itself.
--
SET ROLE mask_bank;
SELECT licdata_internal.mask_pseudonym('x');
SELECT licdata_internal.mask_fpe('1234567890');
SELECT licdata_internal.mask_noise(100, relative => 0.1);
RESET ROLE;
GRANT EXECUTE ON FUNCTION licdata_internal.mask_pseudonym(text, integer), licdata_internal.mask_fpe(text, text),
	licdata_internal.mask_noise(integer, double precision, double precision),
	licdata_internal.mask_noise(bigint, double precision, double precision),
	licdata_internal.mask_noise(numeric, double precision, double precision),
	licdata_internal.mask_noise(double precision, double precision, double precision)
	TO mask_bank, mask_shop, mask_nobody, mask_op;
-- (they are in licdata_internal, whose USAGE nobody has by default)
GRANT USAGE ON SCHEMA licdata_internal TO mask_bank, mask_shop, mask_nobody, mask_op;

--
-- keyed methods refuse a session that acts for no licensee
--
SET ROLE mask_nobody;
SELECT licdata_internal.mask_pseudonym('x');
SELECT licdata_internal.mask_fpe('1234567890');
SELECT licdata_internal.mask_noise(100, relative => 0.1);
-- the operator variants are not granted to PUBLIC
SELECT licdata.mask_pseudonym('x', 16, 'mask_bank');
SELECT licdata.unmask_fpe('1234567890', 'mask_bank');
SELECT licdata.rotate_master_key();
RESET ROLE;
-- and check the caller themselves even when EXECUTE is granted
GRANT EXECUTE ON FUNCTION licdata.unmask_fpe(text, regrole, text),
	licdata.rotate_master_key() TO mask_nobody;
SET ROLE mask_nobody;
SELECT licdata.unmask_fpe('1234567890', 'mask_bank');
SELECT licdata.rotate_master_key();
RESET ROLE;
REVOKE EXECUTE ON FUNCTION licdata.unmask_fpe(text, regrole, text),
	licdata.rotate_master_key() FROM mask_nobody;
-- an operator is not a licensee either
SET ROLE mask_op;
SELECT licdata_internal.mask_pseudonym('x');
RESET ROLE;

--
-- pseudonym
--
SET ROLE mask_bank;
SELECT licdata_internal.mask_pseudonym('110105194912310021') AS bank_token \gset
SELECT licdata_internal.mask_pseudonym('张三丰', 64) AS bank_token_64 \gset
SELECT :'bank_token' ~ '^[a-z2-7]{16}$' AS shape_16,
       :'bank_token_64' ~ '^[a-z2-7]{64}$' AS shape_64,
       length(licdata_internal.mask_pseudonym('x', 8)) AS len_8,
       licdata_internal.mask_pseudonym('110105194912310021') = :'bank_token' AS deterministic,
       licdata_internal.mask_pseudonym('110105194912310021', 8) = left(:'bank_token', 8) AS shorter_is_prefix,
       licdata_internal.mask_pseudonym('110105194912310022') <> :'bank_token' AS other_value_differs,
       licdata_internal.mask_pseudonym('') ~ '^[a-z2-7]{16}$' AS empty_value,
       length(licdata_internal.mask_pseudonym(repeat('张', 100000))) AS long_value,
       licdata_internal.mask_pseudonym(NULL) IS NULL AS null_in_null_out;
SELECT count(DISTINCT licdata_internal.mask_pseudonym(g::text)) AS distinct_tokens
  FROM generate_series(1, 10000) g;
SELECT licdata_internal.mask_pseudonym('x', 7);
SELECT licdata_internal.mask_pseudonym('x', 65);
RESET ROLE;
-- a member of the licensee role acts for it
SET ROLE mask_analyst;
SELECT licdata_internal.mask_pseudonym('110105194912310021') = :'bank_token' AS member_same_token;
RESET ROLE;
-- another licensee gets an unlinkable token
SET ROLE mask_shop;
SELECT licdata_internal.mask_pseudonym('110105194912310021') <> :'bank_token' AS shop_differs;
RESET ROLE;
-- operators compute a given licensee's token
SELECT licdata.mask_pseudonym('110105194912310021', 16, 'mask_bank') = :'bank_token' AS operator_bank,
       licdata.mask_pseudonym('张三丰', 64, 'mask_bank') = :'bank_token_64' AS operator_bank_64,
       licdata.mask_pseudonym('110105194912310021', 16, 'mask_shop') <> :'bank_token' AS operator_shop;
SET ROLE mask_op;
SELECT licdata.mask_pseudonym('110105194912310021', 16, 'mask_bank') = :'bank_token' AS operator_role;
RESET ROLE;
SELECT licdata.mask_pseudonym('x', 16, 'mask_nobody');
SELECT licdata.mask_pseudonym('x', 16, 'mask_analyst');
SELECT licdata.mask_pseudonym('x', 5, 'mask_bank');

--
-- fpe: FF1, same length and alphabet; other characters stay in place
--
SET ROLE mask_bank;
SELECT licdata_internal.mask_fpe('11010519491231002X') AS fpe_id \gset
SELECT licdata_internal.mask_fpe('13812341234') AS fpe_mobile \gset
SELECT licdata_internal.mask_fpe('zhang2024', '0123456789abcdefghijklmnopqrstuvwxyz') AS fpe_b36 \gset
SELECT licdata_internal.mask_fpe('甲-乙丙丁x戊己庚辛', '甲乙丙丁戊己庚辛壬癸') AS fpe_cjk \gset
SELECT :'fpe_id' ~ '^[0-9]{17}X$' AS id_shape,
       :'fpe_id' <> '11010519491231002X' AS id_changed,
       :'fpe_mobile' ~ '^[0-9]{11}$' AS mobile_shape,
       :'fpe_b36' ~ '^[0-9a-z]{9}$' AS b36_shape,
       :'fpe_cjk' ~ '^[甲乙丙丁戊己庚辛壬癸]-[甲乙丙丁戊己庚辛壬癸]{3}x[甲乙丙丁戊己庚辛壬癸]{4}$' AS cjk_shape,
       licdata_internal.mask_fpe('11010519491231002X') = :'fpe_id' AS deterministic,
       licdata_internal.mask_fpe('N/A') AS no_alphabet_characters,
       licdata_internal.mask_fpe('') AS empty,
       licdata_internal.mask_fpe(NULL) IS NULL AS null_in_null_out,
       length(licdata_internal.mask_fpe(repeat('7', 1024))) AS longest;
-- radix^length must reach one million
SELECT licdata_internal.mask_fpe('123456') ~ '^[0-9]{6}$' AS six_digits_ok;
SELECT licdata_internal.mask_fpe('12345');
SELECT licdata_internal.mask_fpe('1234', '0123456789abcdefghijklmnopqrstuvwxyz') ~ '^[0-9a-z]{4}$' AS four_b36_ok;
SELECT licdata_internal.mask_fpe('123', '0123456789abcdefghijklmnopqrstuvwxyz');
SELECT licdata_internal.mask_fpe(repeat('7', 1025));
SELECT licdata_internal.mask_fpe('1234567890', '0');
SELECT licdata_internal.mask_fpe('1234567890', '01234567890');
RESET ROLE;
-- only the operator reverses it, with the licensee's key
SELECT licdata.unmask_fpe(:'fpe_id', 'mask_bank') AS id_back,
       licdata.unmask_fpe(:'fpe_mobile', 'mask_bank') AS mobile_back,
       licdata.unmask_fpe(:'fpe_b36', 'mask_bank', '0123456789abcdefghijklmnopqrstuvwxyz') AS b36_back,
       licdata.unmask_fpe(:'fpe_cjk', 'mask_bank', '甲乙丙丁戊己庚辛壬癸') AS cjk_back,
       licdata.mask_fpe('11010519491231002X', '0123456789', 'mask_bank') = :'fpe_id' AS operator_same,
       licdata.mask_fpe('11010519491231002X', '0123456789', 'mask_shop') <> :'fpe_id' AS shop_differs,
       licdata.unmask_fpe(:'fpe_id', 'mask_shop') <> '11010519491231002X' AS wrong_key_wrong_value;
SELECT count(*) FILTER (WHERE licdata.unmask_fpe(licdata.mask_fpe(v, '0123456789', 'mask_bank'), 'mask_bank') = v) AS round_trips,
       count(DISTINCT licdata.mask_fpe(v, '0123456789', 'mask_bank')) AS distinct_outputs
  FROM (SELECT lpad(g::text, 6, '0') AS v FROM generate_series(0, 999) g) s;
SELECT licdata.unmask_fpe(licdata.mask_fpe(repeat('1234567890', 102), '0123456789', 'mask_shop'), 'mask_shop')
	   = repeat('1234567890', 102) AS long_round_trip;
-- resident IDs with a check character X: let the X take part, or not
SELECT licdata.mask_fpe('11010519491231002X', '0123456789X', 'mask_bank') ~ '^[0-9X]{18}$' AS x_in_alphabet,
       licdata.unmask_fpe(licdata.mask_fpe('11010519491231002X', '0123456789X', 'mask_bank'),
                          'mask_bank', '0123456789X') AS x_round_trip;

--
-- date_trunc
--
SELECT u, licdata_internal.mask_date_trunc('2024-05-17'::date, u) AS date,
       licdata_internal.mask_date_trunc('2024-05-17 13:45:12.5'::timestamp, u) AS ts
  FROM unnest(ARRAY['year', 'quarter', 'month', 'week', 'day', 'hour', 'MONTH']) u;
SET TIME ZONE 'Asia/Shanghai';
SELECT u, licdata_internal.mask_date_trunc('2024-05-17 13:45:12.5+08'::timestamptz, u) AS tstz
  FROM unnest(ARRAY['year', 'quarter', 'month', 'week', 'day', 'hour']) u;
RESET TIME ZONE;
SELECT licdata_internal.mask_date_trunc('infinity'::date, 'year') AS d_inf,
       licdata_internal.mask_date_trunc('-infinity'::date, 'month') AS d_ninf,
       licdata_internal.mask_date_trunc('infinity'::timestamp, 'year') AS ts_inf,
       licdata_internal.mask_date_trunc('-infinity'::timestamptz, 'week') AS tstz_ninf,
       licdata_internal.mask_date_trunc('5874897-12-31'::date, 'quarter') AS last_date,
       licdata_internal.mask_date_trunc('4714-12-31 BC'::date, 'month') AS early_date,
       pg_typeof(licdata_internal.mask_date_trunc(current_date, 'month')) AS date_type,
       pg_typeof(licdata_internal.mask_date_trunc(now(), 'month')) AS tstz_type,
       licdata_internal.mask_date_trunc(NULL::date, 'year') IS NULL AS null_in_null_out;
-- the first valid date is a Monday, but its year starts before it
SELECT licdata_internal.mask_date_trunc('4714-11-24 BC'::date, 'week') AS first_date_week;
SELECT licdata_internal.mask_date_trunc('4714-11-24 BC'::date, 'year');
SELECT licdata_internal.mask_date_trunc('2024-05-17'::date, 'decade');
SELECT licdata_internal.mask_date_trunc('2024-05-17'::timestamp, 'minute');

--
-- bucket: lower bound of the value's bucket, same type
--
SELECT v, licdata_internal.mask_bucket(v, 10) AS w10, licdata_internal.mask_bucket(v, 1) AS w1
  FROM unnest(ARRAY[37, 30, 0, -1, -10, -11, 2147483647]) v;
SELECT licdata_internal.mask_bucket('-2147483648'::integer, 1) AS int4_min_w1,
       licdata_internal.mask_bucket(32767::smallint, 100::smallint) AS int2,
       licdata_internal.mask_bucket(9223372036854775807, 10::bigint) AS int8_max,
       licdata_internal.mask_bucket('-9223372036854775808'::bigint, 1::bigint) AS int8_min_w1,
       pg_typeof(licdata_internal.mask_bucket(1::smallint, 1::smallint)) AS int2_type;
SELECT licdata_internal.mask_bucket('-2147483648'::integer, 10);
SELECT licdata_internal.mask_bucket('-2147483648'::integer, 2147483647);
SELECT licdata_internal.mask_bucket('-32768'::smallint, 10::smallint);
SELECT licdata_internal.mask_bucket('-9223372036854775808'::bigint, 10::bigint);
SELECT licdata_internal.mask_bucket(5, 0);
SELECT licdata_internal.mask_bucket(5, -10);
SELECT v, licdata_internal.mask_bucket(v, 10::numeric) AS w10, licdata_internal.mask_bucket(v, 0.1) AS w01
  FROM unnest(ARRAY[123.45, -0.5, 0, -123.45, 99999999999999999999.99, 'NaN', 'Infinity', '-Infinity']::numeric[]) v;
SELECT licdata_internal.mask_bucket(1::numeric, 'NaN');
SELECT licdata_internal.mask_bucket(1::numeric, 0);
SELECT v, licdata_internal.mask_bucket(v, 5::float8) AS w5
  FROM unnest(ARRAY[12.5, -1, -0.0, 1e300, 'NaN', 'Infinity', '-Infinity']::float8[]) v;
SELECT licdata_internal.mask_bucket(12.5::real, 5::real) AS float4,
       pg_typeof(licdata_internal.mask_bucket(12.5::real, 5::real)) AS float4_type;
SELECT licdata_internal.mask_bucket(1e300::float8, 1e-300::float8);
SELECT licdata_internal.mask_bucket(1::float8, 'NaN');
SELECT licdata_internal.mask_bucket(1::float8, 'Infinity');
SELECT licdata_internal.mask_bucket(NULL::integer, 10) IS NULL AS null_in_null_out;

--
-- noise: deterministic, bounded, keyed by licensee and value
--
SET ROLE mask_bank;
SELECT abs(licdata_internal.mask_noise(1000, relative => 0.05) - 1000) <= 50 AS int4_bounded,
       licdata_internal.mask_noise(1000, relative => 0.05) = licdata_internal.mask_noise(1000, relative => 0.05) AS deterministic,
       pg_typeof(licdata_internal.mask_noise(1000, relative => 0.05)) AS int4_type,
       pg_typeof(licdata_internal.mask_noise(1000::bigint, absolute => 10)) AS int8_type,
       abs(licdata_internal.mask_noise(1000::bigint, absolute => 10) - 1000) <= 10 AS int8_bounded,
       scale(licdata_internal.mask_noise(1234.56::numeric, relative => 0.1)) AS numeric_scale,
       abs(licdata_internal.mask_noise(1234.56::numeric, relative => 0.1) - 1234.56) <= 123.456 AS numeric_bounded,
       abs(licdata_internal.mask_noise(1.5::numeric, absolute => 1) - licdata_internal.mask_noise(1.50::numeric, absolute => 1)) <= 0.06 AS numeric_normalised,
       abs(licdata_internal.mask_noise(1000::float8, relative => 0.01) - 1000) <= 10 AS float8_bounded,
       licdata_internal.mask_noise(1000, absolute => 0) AS zero_noise,
       licdata_internal.mask_noise(0, relative => 0.5) AS zero_value_relative,
       licdata_internal.mask_noise(2147483647, absolute => 1e12) BETWEEN -2147483648 AND 2147483647 AS int4_saturates,
       licdata_internal.mask_noise(NULL::integer, relative => 0.1) IS NULL AS null_in_null_out;
SELECT licdata_internal.mask_noise('NaN'::float8, relative => 0.1) AS nan,
       licdata_internal.mask_noise('-Infinity'::float8, absolute => 1) AS ninf,
       licdata_internal.mask_noise('NaN'::numeric, relative => 0.1) AS numeric_nan;
-- noise is spread over [-1, 1] times the radius
SELECT count(*) FILTER (WHERE n <> g) > 9000 AS mostly_changed,
       avg(n - g) BETWEEN -0.05 AND 0.05 AS centred,
       min(n - g) BETWEEN -1 AND -0.9 AS reaches_minus_1,
       max(n - g) BETWEEN 0.9 AND 1 AS reaches_plus_1
  FROM (SELECT g, licdata_internal.mask_noise(g, absolute => 1) AS n
          FROM generate_series(1000000, 1009999) i, LATERAL (SELECT i::float8 AS g) f) s;
CREATE TEMP TABLE mask_noise_bank AS
	SELECT g, licdata_internal.mask_noise(g, absolute => 1000) AS n FROM generate_series(1, 100) g;
SELECT licdata_internal.mask_noise(1000);
SELECT licdata_internal.mask_noise(1000, 0.1, 10);
SELECT licdata_internal.mask_noise(1000, relative => -0.1);
SELECT licdata_internal.mask_noise(1000, absolute => 'NaN');
SELECT licdata_internal.mask_noise(NULL::integer);
RESET ROLE;
GRANT SELECT ON mask_noise_bank TO mask_shop;
SET ROLE mask_shop;
SELECT count(*) FILTER (WHERE licdata_internal.mask_noise(g, absolute => 1000) <> n) > 90 AS shop_noise_differs
  FROM mask_noise_bank;
RESET ROLE;
DROP TABLE mask_noise_bank;

--
-- function: an operator's own function of the value
--
CREATE FUNCTION mask_test_upper(text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT AS 'SELECT upper($1)';
CREATE FUNCTION mask_test_nullsafe(text) RETURNS text
	LANGUAGE sql IMMUTABLE AS $$SELECT coalesce($1, 'was null')$$;
CREATE FUNCTION mask_test_two(text, text) RETURNS text
	LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2';
CREATE FUNCTION mask_test_len(text) RETURNS integer
	LANGUAGE sql IMMUTABLE AS 'SELECT length($1)';
SELECT licdata_internal.mask_function('abc'::text, 'mask_test_upper') AS upper,
       licdata_internal.mask_function(NULL::text, 'mask_test_upper') IS NULL AS strict_null,
       licdata_internal.mask_function(NULL::text, 'mask_test_nullsafe') AS non_strict_null,
       licdata_internal.mask_function('-5'::integer, 'abs(integer)'::regprocedure::regproc) AS builtin;
SELECT licdata_internal.mask_function(42, 'mask_test_upper');
SELECT licdata_internal.mask_function('abc'::text, 'mask_test_two');
SELECT licdata_internal.mask_function('abc'::text, 'mask_test_len');
SELECT licdata_internal.mask_function('abc'::text, NULL);
REVOKE EXECUTE ON FUNCTION mask_test_upper(text) FROM PUBLIC;
SET ROLE mask_nobody;
SELECT licdata_internal.mask_function('abc'::text, 'mask_test_upper');
RESET ROLE;
DROP FUNCTION mask_test_upper(text), mask_test_nullsafe(text), mask_test_two(text, text),
	mask_test_len(text);

--
-- clean up
--
REVOKE EXECUTE ON FUNCTION licdata_internal.mask_pseudonym(text, integer), licdata_internal.mask_fpe(text, text),
	licdata_internal.mask_noise(integer, double precision, double precision),
	licdata_internal.mask_noise(bigint, double precision, double precision),
	licdata_internal.mask_noise(numeric, double precision, double precision),
	licdata_internal.mask_noise(double precision, double precision, double precision)
	FROM mask_bank, mask_shop, mask_nobody, mask_op;
REVOKE USAGE ON SCHEMA licdata_internal FROM mask_bank, mask_shop, mask_nobody, mask_op;
DELETE FROM licdata.licensees WHERE licensee IN ('mask_bank'::regrole, 'mask_shop'::regrole);
DROP ROLE mask_analyst, mask_bank, mask_shop, mask_nobody, mask_op;

