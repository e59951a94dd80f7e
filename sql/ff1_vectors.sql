--
-- ff1_vectors: FF1 (src/ff1.c) against every NIST SP 800-38G sample
-- (FF1samples.pdf, samples 1-9: AES-128/192/256, radix 10 and 36, with and
-- without tweaks), both directions, through licdata_internal._ff1_test.
--
-- quietly: another test file may have created it already
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;

CREATE TEMP TABLE ff1_samples (sample int, key bytea, tweak bytea, radix int, pt text, ct text);
INSERT INTO ff1_samples VALUES
 (1, '\x2b7e151628aed2a6abf7158809cf4f3c', '', 10, '0123456789', '2433477484'),
 (2, '\x2b7e151628aed2a6abf7158809cf4f3c', '\x39383736353433323130', 10, '0123456789', '6124200773'),
 (3, '\x2b7e151628aed2a6abf7158809cf4f3c', '\x3737373770717273373737', 36, '0123456789abcdefghi', 'a9tv40mll9kdu509eum'),
 (4, '\x2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f', '', 10, '0123456789', '2830668132'),
 (5, '\x2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f', '\x39383736353433323130', 10, '0123456789', '2496655549'),
 (6, '\x2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f', '\x3737373770717273373737', 36, '0123456789abcdefghi', 'xbj3kv35jrawxv32ysr'),
 (7, '\x2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f7f036d6f04fc6a94', '', 10, '0123456789', '6657667009'),
 (8, '\x2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f7f036d6f04fc6a94', '\x39383736353433323130', 10, '0123456789', '1001623463'),
 (9, '\x2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f7f036d6f04fc6a94', '\x3737373770717273373737', 36, '0123456789abcdefghi', 'xs8a0azh2avyalyzuwd');

SELECT sample, length(key) * 8 AS aes_bits, radix, pt,
       licdata_internal._ff1_test(key, tweak, radix, pt, false) AS encrypted,
       licdata_internal._ff1_test(key, tweak, radix, pt, false) = ct AS encrypt_ok,
       licdata_internal._ff1_test(key, tweak, radix, ct, true) = pt AS decrypt_ok
  FROM ff1_samples ORDER BY sample;

-- both arithmetic paths (64-bit for radix^v < 2^32, BIGNUM above) round-trip
SELECT radix, n,
       bool_and(licdata_internal._ff1_test(k, '', radix, licdata_internal._ff1_test(k, '', radix, x, false), true) = x) AS round_trip
  FROM (SELECT r AS radix, n, '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea AS k,
               (SELECT string_agg(substr('0123456789abcdefghijklmnopqrstuvwxyz', 1 + (i * 7 + n + s) % r, 1), '')
                  FROM generate_series(1, n) i) AS x
          FROM unnest(ARRAY[2, 10, 36]) r, unnest(ARRAY[4, 6, 12, 18, 20, 32, 33, 64, 65, 200]) n,
               generate_series(1, 5) s
         WHERE r::numeric ^ n >= 1000000) t
 GROUP BY radix, n ORDER BY radix, n;

-- limits and bad input
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 10, '01234', false);
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 10, '012345', false) ~ '^[0-9]{6}$' AS six_ok;
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 2, repeat('1', 19), false);
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 2, repeat('1', 20), false) ~ '^[01]{20}$' AS twenty_bits_ok;
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 10, '012345678a', false);
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 37, '0123456789', false);
SELECT licdata_internal._ff1_test('\x2b7e1516', '', 10, '0123456789', false);
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 10, repeat('1', 1025), false);

-- not for PUBLIC
CREATE ROLE mask_ff1_nobody NOLOGIN;
SET ROLE mask_ff1_nobody;
SELECT licdata_internal._ff1_test('\x2b7e151628aed2a6abf7158809cf4f3c', '', 10, '0123456789', false);
RESET ROLE;
DROP ROLE mask_ff1_nobody;
DROP TABLE ff1_samples;
