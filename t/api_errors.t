#!/usr/bin/perl
# Every error answer of the API: 400 option codes (nothing stored), 404
# unknown and malformed ids, 413 (nginx), 415 not media, 422 GIF from audio.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');
my $big = VconvNginx::make_media($dir, 'mp4', duration => 6);
my $wav = VconvNginx::make_media($dir, 'wav');
my $txt = VconvNginx::make_media($dir, 'text');
cmp_ok(-s $big, '>', 110 * 1024, 'the "big" clip is over 100k') or diag(-s $big);

my $ng = VconvNginx->new(server => <<'EOF')->start;
        location = /small/jobs {
            vconv_upload;
            client_max_body_size 100k;
        }
EOF

# --- 400: bad options, refused before anything is stored ----------------

my @bad = (
    ['format=mp4&foo=1',               'unknown_option'],
    ['format=xyz',                     'unknown_format'],
    ['quality=101',                    'out_of_range'],
    ['height=4',                       'out_of_range'],
    ['height=abc',                     'not_a_number'],
    ['width=12px',                     'not_a_number'],
    ['format=webm&vcodec=h264',        'codec_not_allowed'],
    ['format=mp4&acodec=flac_bogus',   'codec_not_allowed'],
    ['quality=50&crf=20',              'conflicting_options'],
    ['format=mp3&height=120',          'conflicting_options'],
    ['height=120&height=96',           'duplicate_option'],
);
for my $b (@bad) {
    my ($q, $code) = @$b;
    my $r = $ng->post_file("/api/jobs?$q", $mp4, name => 'a.mp4');
    VconvNginx::is_api_error($r, 400, $code, "raw POST ?$q -> 400 $code");
}
{
    my $r = $ng->post_file('/api/jobs?format=xyz&wait=1', $mp4);
    VconvNginx::is_api_error($r, 400, 'unknown_format', 'wait=1 with a bad option -> 400');
    $r = $ng->post_multipart('/api/jobs', file => $mp4,
                             fields_before => [format => 'mp4', bogus => 1]);
    VconvNginx::is_api_error($r, 400, 'unknown_option',
                             'multipart field before the file: unknown_option');
    $r = $ng->post_multipart('/api/jobs', file => $mp4,
                             fields_before => [format => 'mp4'],
                             fields_after => [height => 'abc']);
    VconvNginx::is_api_error($r, 400, 'not_a_number',
                             'multipart field after the file: not_a_number');
}
my $entries;
VconvNginx::poll(3, sub { $entries = $ng->store_entries; !@$entries });
is_deeply($entries, [], 'nothing left in the store after the 400s')
    or diag("store: @$entries");

# --- 404: unknown and malformed ids ----------------------------------------

my $unknown = join '', map { sprintf '%x', int rand 16 } 1 .. 32;
for my $p ("/api/jobs/$unknown", "/api/jobs/$unknown/output",
           "/api/jobs/$unknown/events") {
    VconvNginx::is_api_error($ng->get($p), 404, undef, "GET $p (unknown id) -> 404");
}
VconvNginx::is_api_error($ng->delete($unknown), 404, undef, 'DELETE unknown id -> 404');
{
    my $r = $ng->head("/api/jobs/$unknown/output");
    is($r->{status}, 404, 'HEAD unknown output -> 404');
}
# ids of the wrong shape: the module answers 404 JSON
my @malformed = (
    substr($unknown, 0, 31),                  # 31 hex
    $unknown . 'a',                           # 33 hex
    uc($unknown) =~ /[A-F]/ ? uc $unknown : 'ABCDEF' . substr($unknown, 6),
    "x$unknown",
    "bad%20node-$unknown",
    'node.x-' . $unknown,
    ('n' x 49) . "-$unknown",                 # node name over 48
);
for my $m (@malformed) {
    my $r = $ng->get("/api/jobs/$m");
    unlike($r->{body}, qr/root:.*:0:0:/, "GET /api/jobs/$m leaks nothing");
    VconvNginx::is_api_error($r, 404, undef, "GET /api/jobs/$m -> 404 JSON");
    $r = $ng->get("/api/jobs/$m/output");
    VconvNginx::is_api_error($r, 404, undef, "GET /api/jobs/$m/output -> 404 JSON");
    VconvNginx::is_api_error($ng->delete("/api/jobs/$m"), 404, undef,
                             "DELETE /api/jobs/$m -> 404 JSON");
}
# ids nginx itself may turn into another path (dot segments after
# decoding) or refuse (NUL): whatever answers, no file leaks
for my $m ('%2e%2e%2f%2e%2e%2fetc%2fpasswd', "$unknown%00",
           '..%2F..%2F..%2Fetc%2Fpasswd',
           "$unknown%2F..%2F..%2F..%2Fetc%2Fpasswd") {
    my $r = $ng->get("/api/jobs/$m");
    ok($r->{status} == 404 || $r->{status} == 400, "GET /api/jobs/$m -> 404 or 400")
        or diag("status $r->{status}");
    unlike($r->{body}, qr/root:.*:0:0:/, '... leaks nothing');
}
{
    # a plain ../ walks out of the location in nginx itself: still no file
    my $r = $ng->get('/api/jobs/../../../../etc/passwd');
    unlike($r->{body}, qr/root:.*:0:0:/, '/api/jobs/../../etc/passwd leaks nothing');
}
{
    my $r = $ng->get("/api/jobs/$unknown/bogus");
    is($r->{status}, 404, 'GET /api/jobs/{id}/bogus -> 404');
}
{
    my $r = $ng->_curl('PATCH', "/api/jobs/$unknown");
    ok($r->{status} == 405 || $r->{status} == 404, 'PATCH on a job -> 405 or 404')
        or diag("status $r->{status}");
    $r = $ng->get('/api/jobs');
    ok($r->{status} == 405 || $r->{status} == 400 || $r->{status} == 404,
       'GET on the upload location is refused') or diag("status $r->{status}");
}

# --- 413: client_max_body_size ---------------------------------------------

{
    my $r = $ng->post_file('/small/jobs?format=mp4', $big, name => 'big.mp4');
    is($r->{status}, 413, 'body over client_max_body_size (Content-Length) -> 413');
    is_deeply($ng->store_entries, [], '... refused before anything was stored');
    $r = $ng->post_file('/small/jobs?format=mp4', $big, name => 'big.mp4',
                        chunked => 1);
    is($r->{status}, 413, 'chunked body over client_max_body_size -> 413')
        or diag($r->{body});
    # nginx finds out mid-body: a failed job record may stay, its data not
    my @data;
    VconvNginx::poll(3, sub {
        @data = grep { !m{/job\.json$} } glob($ng->store . '/*/*');
        !@data;
    });
    is("@data", '', 'the chunked 413 left no input/output data in the store');
    my $tiny = VconvNginx::make_media($dir, 'mp4', size => '160x120', duration => 1);
    cmp_ok(-s $tiny, '<', 100 * 1024, 'the tiny clip is under 100k');
    my $r2 = $ng->post_file('/small/jobs?format=mp4', $tiny, name => 'ok.mp4');
    is($r2->{status}, 202, 'a body under the limit is taken there');
    my $job = $r2->{json} && $ng->wait_job($r2->{json}{id}, 30);
    is($job && $job->{status}, 'done', '... and converted');
    $ng->delete($job->{id}) if $job;
    VconvNginx::poll(3, sub { !-e $ng->store . "/$job->{id}" });
    ok(!-e $ng->store . "/$job->{id}", 'the deleted job folder is gone');
}

# --- 415: not media ----------------------------------------------------------

{
    my $r = $ng->post_file('/api/jobs?format=mp4', $txt, name => 'notes.txt');
    if ($r->{status} == 415) {
        VconvNginx::is_api_error($r, 415, 'unsupported_input', 'text file -> 415 at upload');
    } else {
        is($r->{status}, 202, 'text file: upload taken (checked by the job)');
        my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
        is($job->{status}, 'failed', 'text file: job failed');
        is($job->{error} && $job->{error}{code}, 'unsupported_input',
           'text file: error.code unsupported_input');
        my $o = $ng->get("/api/jobs/$job->{id}/output");
        ok($o->{status} >= 400 && $o->{status} != 500,
           'output of a failed job is not served') or diag("status $o->{status}");
    }
    $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $txt, name => 'notes.txt');
    VconvNginx::is_api_error($r, 415, 'unsupported_input', 'text file, wait=1 -> 415');

    $r = $ng->post_multipart('/api/jobs', file => $txt, filename => 'x.mp4',
                             fields_before => [format => 'mp4']);
    my $ok = $r->{status} == 415 ? $r->{json}
           : $r->{status} == 202 ? $ng->wait_job($r->{json}{id}, 30) : undef;
    my $code = $r->{status} == 415 ? $ok && $ok->{error}{code}
             : $ok && $ok->{error} && $ok->{error}{code};
    is($code, 'unsupported_input', 'text named .mp4 in multipart -> unsupported_input');
}

# --- 422: GIF from audio only ------------------------------------------------

{
    my $r = $ng->post_file('/api/jobs?format=gif', $wav, name => 'tone.wav');
    is($r->{status}, 202, 'GIF from a WAV: upload taken');
    my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
    is($job->{status}, 'failed', 'GIF from a WAV: job failed');
    is($job->{error} && $job->{error}{code}, 'no_video_stream',
       'GIF from a WAV: error.code no_video_stream');
    ok($job->{error} && length($job->{error}{message} // ''), '... with a message');
    is($job->{input} && $job->{input}{name}, 'tone.wav', '... input.name kept');
    my $o = $ng->get("/api/jobs/$job->{id}/output");
    ok($o->{status} >= 400 && $o->{status} < 500, 'failed job output -> 4xx')
        or diag("status $o->{status}");

    $r = $ng->post_file('/api/jobs?format=gif&wait=1', $wav, name => 'tone.wav');
    VconvNginx::is_api_error($r, 422, 'no_video_stream', 'GIF from a WAV, wait=1 -> 422');

    # the same WAV to an audio format works
    $r = $ng->post_file('/api/jobs?format=mp3', $wav, name => 'tone.wav');
    $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
    is($job->{status}, 'done', 'WAV -> mp3 done');
}

# the upload location takes POST and PUT only
{
    my $r = $ng->get('/api/jobs');
    VconvNginx::is_api_error($r, 405, 'method_not_allowed',
                             'GET on the upload location -> 405 JSON');
    is($r->{headers}{allow}, 'POST, PUT', '... with Allow: POST, PUT');
}

# nginx itself logs refused bodies and the traversal probes that fall to
# the static location at "error"
$ng->assert_clean_log(undef,
    allow => qr/client intended to send too large|open\(\) ".*" failed \(2:/);
$ng->stop;
done_testing;
