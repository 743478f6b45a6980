-- The visibility map for `r2bridge migrate --visibility-map`, exported from
-- Mastodon's PostgreSQL database (docs/mastodon.md, docs/migration.md):
--
--   sudo -u mastodon psql -At -F, -f visibility-map.sql mastodon_production >private-media.csv
--
-- One line per directory of an attachment of a followers-only (2), direct (3)
-- or limited (4) status: key_prefix,visibility,owner[,audience...]
--   key prefix  Paperclip's layout, as the files lie in public/system:
--               [cache/]media_attachments/{files,thumbnails}/<id partition>/
--               (the id partition is Paperclip's: the id zero-padded to 9
--               digits, cut in groups of 3, a last incomplete group dropped;
--               cache/ holds copies of remote media. Listing all four
--               directories is harmless: a prefix no file has matches nothing)
--   visibility  private for followers-only, direct for direct and limited
--   owner       the status' author
--   audience    followers-only: the author's followers and the accounts the
--               status mentions; direct and limited: the mentioned accounts
-- Anything not listed (public and unlisted statuses, attachments not yet
-- attached to a status) is migrated as public.
SELECT p.dir
       || regexp_replace(left(lpad(m.id::text, greatest(9, length(m.id::text)), '0'),
                              greatest(9, length(m.id::text)) / 3 * 3),
                         '(\d{3})(?=\d)', '\1/', 'g')
       || '/',
       CASE s.visibility WHEN 2 THEN 'private' ELSE 'direct' END,
       s.account_id,
       CASE s.visibility
         WHEN 2 THEN (SELECT string_agg(a.id::text, ',' ORDER BY a.id)
                        FROM (SELECT f.account_id FROM follows f
                               WHERE f.target_account_id = s.account_id
                              UNION
                              SELECT mn.account_id FROM mentions mn
                               WHERE mn.status_id = s.id) AS a(id))
         ELSE (SELECT string_agg(DISTINCT mn.account_id::text, ',')
                 FROM mentions mn WHERE mn.status_id = s.id)
       END
FROM media_attachments m
JOIN statuses s ON s.id = m.status_id
CROSS JOIN (VALUES ('media_attachments/files/'),
                   ('media_attachments/thumbnails/'),
                   ('cache/media_attachments/files/'),
                   ('cache/media_attachments/thumbnails/')) AS p(dir)
WHERE s.visibility IN (2, 3, 4)
ORDER BY m.id, p.dir;
