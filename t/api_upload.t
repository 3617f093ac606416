#!/usr/bin/perl
# Uploads (raw POST, PUT, wait=1, multipart with fields on both sides,
# chunked), the job JSON, serving the output (Range, ETag, HEAD, headers),
# presets, metrics, and the $vconv_job_* variables in an access log.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');
my $in = VconvNginx::probe($mp4);

my $ng = VconvNginx->new(
    http => <<'EOF',
    log_format vconvlog '$request_method $uri $status job=$vconv_job_id st=$vconv_job_status';
EOF
    server => <<'EOF',
        access_log %%PREFIX%%/logs/vconv.log vconvlog;
EOF
)->start;

my $ID = qr/^(?:[A-Za-z0-9_]{1,48}-)?[0-9a-f]{32}$/;
my %STATUS = map { $_ => 1 } qw(uploading queued running done failed canceled);
my $done = 0;

sub slurp { open my $fh, '<', $_[0] or return ''; binmode $fh; local $/; <$fh> }

# probe a converted file: codec, size, duration close to the input's
sub check_video {
    my ($file, $w, $h, $name, %o) = @_;
    my $p = VconvNginx::probe($file);
    ok($p && $p->{video}, "$name: ffprobe reads it") or return;
    is($p->{video}{codec_name}, $o{codec} // 'h264', "$name: video codec");
    is("$p->{video}{width}x$p->{video}{height}", "${w}x$h", "$name: size");
    my $d = $p->{duration} // $p->{video}{duration} // 0;
    ok(abs($d - $in->{duration}) <= 0.1, "$name: duration $d ~ $in->{duration}");
    if (exists $o{audio}) {
        is($p->{audio} && $p->{audio}{codec_name}, $o{audio}, "$name: audio codec");
    }
    return $p;
}

# --- raw POST, job JSON, output ----------------------------------------------

my $t0 = time;
my $r = $ng->post_file('/api/jobs?format=mp4&height=120', $mp4,
                       name => 'holiday clip.mov');
is($r->{status}, 202, 'raw POST -> 202');
like($r->{headers}{'content-type'} // '', qr{application/json}, 'JSON answer');
my $j = $r->{json} // {};
like($j->{id} // '', $ID, 'id is 32 hex (maybe node-prefixed)');
my $id = $j->{id} // 'none';
like($r->{headers}{location} // '', qr{^(?:https?://[^/]+)?/api/jobs/\Q$id\E$},
     'Location is the job URL');
ok($STATUS{ $j->{status} // '' } && $j->{status} ne 'failed',
   "status $j->{status} at 202");
ok(defined $j->{progress} && $j->{progress} >= 0 && $j->{progress} <= 1,
   'progress in 0..1');
my $created = VconvNginx::ts($j->{created});
ok(defined $created && abs($created - $t0) < 60, "created is now ($j->{created})");
ok(exists $j->{queue_position}, 'queue_position present');
is($j->{input} && $j->{input}{name}, 'holiday clip.mov', 'input.name from X-File-Name');
ok(-d $ng->store . "/$id", 'job folder <store>/<id> exists');

my $job = $ng->wait_job($id, 30) // {};
is($job->{status}, 'done', 'job done');
$done++ if ($job->{status} // '') eq 'done';
ok(($job->{progress} // 0) == 1, 'progress 1 when done');
is($job->{input}{bytes}, -s $mp4, 'input.bytes = file size');
ok(abs(($job->{input}{duration} // 0) - 2) < 0.1, 'input.duration ~2 s');
is($job->{input}{streams}, 2, 'input.streams 2');
like($job->{input}{format} // '', qr/mov|mp4/, 'input.format mov/mp4');
is($job->{output}{format}, 'mp4', 'output.format mp4');
like($job->{output}{url} // '', qr{/api/jobs/\Q$id\E/output$}, 'output.url');
{
    my ($c, $e) = map { VconvNginx::ts($_) // 0 } @$job{qw(created expires)};
    ok($e > $c && abs($e - $c - 3600) < 60, "expires about ttl=1h after created ($job->{expires})");
}
ok(!$job->{error} || !$job->{error}{code}, 'no error on a done job');

my $out = "$dir/out1.mp4";
$r = $ng->download($id, $out);
is($r->{status}, 200, 'GET output -> 200');
is($r->{headers}{'content-type'}, 'video/mp4', 'Content-Type video/mp4');
is(-s $out, $job->{output}{bytes}, 'output.bytes = downloaded size');
is($r->{headers}{'content-length'}, -s $out, 'Content-Length');
like($r->{headers}{'content-disposition'} // '', qr/^attachment/, 'attachment');
like($r->{headers}{'content-disposition'} // '', qr/holiday.{0,3}clip\.mp4/,
     'Content-Disposition: original base name + .mp4');
is($r->{headers}{'x-content-type-options'}, 'nosniff', 'nosniff');
my $etag = $r->{headers}{etag};
my $lm = $r->{headers}{'last-modified'};
ok($etag, 'ETag present');
ok($lm, 'Last-Modified present');
check_video($out, 160, 120, 'height=120', audio => 'aac');
{
    my $data = slurp($out);
    my ($moov, $mdat) = (index($data, 'moov'), index($data, 'mdat'));
    ok($moov > 0 && $moov < $mdat, 'MP4 is faststart (moov before mdat)');

    my $rr = $ng->get("/api/jobs/$id/output", range => '0-99');
    is($rr->{status}, 206, 'Range -> 206');
    is($rr->{headers}{'content-range'}, 'bytes 0-99/' . length($data),
       'Content-Range');
    is($rr->{body}, substr($data, 0, 100), 'the range bytes');
    $rr = $ng->get("/api/jobs/$id/output", range => '100-');
    is(length $rr->{body}, length($data) - 100, 'open range');
    $rr = $ng->get("/api/jobs/$id/output", range => '999999999-');
    is($rr->{status}, 416, 'unsatisfiable range -> 416');

    $rr = $ng->get("/api/jobs/$id/output", headers => ["If-None-Match: $etag"]);
    is($rr->{status}, 304, 'If-None-Match with the ETag -> 304');
    is($rr->{body}, '', '... no body');
    $rr = $ng->get("/api/jobs/$id/output", headers => ["If-Modified-Since: $lm"]);
    is($rr->{status}, 304, 'If-Modified-Since -> 304');
    $rr = $ng->get("/api/jobs/$id/output", headers => ['If-None-Match: "nope"']);
    is($rr->{status}, 200, 'other ETag -> 200');

    $rr = $ng->head("/api/jobs/$id/output");
    is($rr->{status}, 200, 'HEAD -> 200');
    is($rr->{headers}{'content-length'}, length $data, 'HEAD Content-Length');
    is($rr->{headers}{etag}, $etag, 'HEAD ETag');
    is($rr->{body}, '', 'HEAD has no body');

    $rr = $ng->get("/api/jobs/$id");
    is($rr->{status}, 200, 'GET job again');
    is($rr->{json} && $rr->{json}{status}, 'done', '... done');
    like($rr->{headers}{'content-type'} // '', qr{application/json}, '... JSON');
}
ok(!-e $ng->store . "/$id/input", 'input deleted when the job ended')
    or diag(join ' ', glob($ng->store . "/$id/*"));

# the access log has the job id and a status
{
    my $line;
    VconvNginx::poll(5, sub {
        ($line) = grep { m{^POST /api/jobs } } split /\n/, slurp($ng->prefix . '/logs/vconv.log');
        $line;
    });
    like($line // '', qr/ 202 job=\Q$id\E st=(uploading|queued|running|done)$/,
         '$vconv_job_id and $vconv_job_status in the access log')
        or diag($line);
}

# --- PUT (curl -T) --------------------------------------------------------

$r = $ng->post_file('/api/jobs?format=mp4', $mp4, method => 'PUT', name => 'put.mp4');
is($r->{status}, 202, 'PUT (curl -T) -> 202');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
is($job->{status}, 'done', 'PUT job done');
$done++ if ($job->{status} // '') eq 'done';
$r = $ng->download($job->{id} // 'x', "$dir/put.mp4");
check_video("$dir/put.mp4", 320, 240, 'PUT output');

# --- wait=1 ---------------------------------------------------------------

$r = $ng->post_file('/api/jobs?format=mp4&height=96&wait=1', $mp4,
                    name => 'party.avi', output => "$dir/wait.mp4");
is($r->{status}, 200, 'wait=1 -> 200 with the file');
is($r->{headers}{'content-type'}, 'video/mp4', 'wait=1 Content-Type video/mp4');
like($r->{headers}{'content-disposition'} // '', qr/filename="?party\.mp4"?/,
     'wait=1 Content-Disposition party.mp4');
is($r->{headers}{'x-content-type-options'}, 'nosniff', 'wait=1 nosniff');
check_video("$dir/wait.mp4", 128, 96, 'wait=1 output');
# a wait=1 job leaves no record once answered (issue 18): not counted here

# --- multipart ---------------------------------------------------------------

$r = $ng->post_multipart('/api/jobs', file => $mp4, filename => 'form.mov',
                         fields_before => [format => 'mp4'],
                         fields_after => [height => 120]);
is($r->{status}, 202, 'multipart -> 202');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
is($job->{status}, 'done', 'multipart job done');
$done++ if ($job->{status} // '') eq 'done';
is($job->{input} && $job->{input}{name}, 'form.mov', 'multipart filename is input.name');
$ng->download($job->{id} // 'x', "$dir/mp.mp4");
check_video("$dir/mp.mp4", 160, 120, 'multipart (format before, height after)');

$r = $ng->post_multipart('/api/jobs', file => $mp4, filename => 'form2.mp4',
                         fields_before => [format => 'webm', height => 96],
                         fields_after => [audio => 0]);
is($r->{status}, 202, 'multipart webm -> 202');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
is($job->{status}, 'done', 'multipart webm done');
$done++ if ($job->{status} // '') eq 'done';
$r = $ng->download($job->{id} // 'x', "$dir/mp.webm");
is($r->{headers}{'content-type'}, 'video/webm', 'webm Content-Type');
{
    my $p = VconvNginx::probe("$dir/mp.webm");
    like($p && $p->{video} && $p->{video}{codec_name} // '', qr/^vp[89]$|^av1$/,
         'webm video codec');
    is($p && $p->{video} && "$p->{video}{width}x$p->{video}{height}", '128x96',
       'webm size (height before the file)');
    ok($p && !$p->{audio}, 'audio=0 after the file part: no audio stream');
}

# --- chunked ----------------------------------------------------------------

$r = $ng->post_file('/api/jobs?format=mp4&height=120', $mp4, chunked => 1,
                    name => 'chunked.mp4');
is($r->{status}, 202, 'chunked upload -> 202');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
is($job->{status}, 'done', 'chunked job done');
$done++ if ($job->{status} // '') eq 'done';
is($job->{input} && $job->{input}{bytes}, -s $mp4, 'chunked: input.bytes');
$ng->download($job->{id} // 'x', "$dir/ch.mp4");
check_video("$dir/ch.mp4", 160, 120, 'chunked output');

# an audio output from the same clip
$r = $ng->post_file('/api/jobs?format=mp3', $mp4, name => 'song.mp4');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
is($job->{status}, 'done', 'mp3 job done');
$done++ if ($job->{status} // '') eq 'done';
$r = $ng->download($job->{id} // 'x', "$dir/a.mp3");
is($r->{headers}{'content-type'}, 'audio/mpeg', 'mp3 Content-Type');
like($r->{headers}{'content-disposition'} // '', qr/song\.mp3/, 'mp3 file name');
{
    my $p = VconvNginx::probe("$dir/a.mp3");
    is($p && $p->{audio} && $p->{audio}{codec_name}, 'mp3', 'mp3 codec');
    ok($p && !$p->{video}, 'no video in the mp3');
}

# --- presets ---------------------------------------------------------------

$r = $ng->get('/api/presets');
is($r->{status}, 200, 'GET /api/presets -> 200');
like($r->{headers}{'content-type'} // '', qr{application/json}, 'presets JSON');
{
    my $f = $r->{json} && $r->{json}{formats};
    my @names = ref $f eq 'ARRAY' ? map { ref $_ ? $_->{name} : $_ } @$f
              : ref $f eq 'HASH' ? keys %$f : ();
    my %n = map { $_ => 1 } @names;
    ok($n{$_}, "presets list $_") for qw(mp4 webm gif mp3 wav jpg);
}

# --- metrics ---------------------------------------------------------------

$r = $ng->get('/api/metrics');
is($r->{status}, 200, 'GET /api/metrics -> 200');
like($r->{headers}{'content-type'} // '', qr{^text/plain}, 'metrics text/plain');
like($r->{body}, qr/^# TYPE vconv_\w+ (counter|gauge)/m, 'Prometheus # TYPE lines');
{
    my ($n) = $r->{body} =~ /^vconv_jobs\{state="done"\}\s+(\d+)/m;
    ok(defined $n && $n >= $done, "vconv_jobs{state=\"done\"} >= $done")
        or diag($r->{body});
    my @bad = grep { !/^#/ && !/^[a-zA-Z_:][\w:]*(\{[^}]*\})?\s+[-+0-9.eEInfa]+(\s+\d+)?$/ }
              split /\n/, $r->{body};
    ok(!@bad, 'every metrics line is name{labels} value') or diag("@bad[0..2]");
}

$ng->assert_clean_log;
$ng->stop;
done_testing;
