#!/usr/bin/perl
# HTTP/2 uploads over a link with a 50 ms round trip (tools/delay_proxy.pl,
# 25 ms each way): the stream's window, not the link, used to set the
# speed (64k a round trip, 1.3 MB/s: issue 19).  With the module's
# defaults the window opens with the request's headers; an explicit
# client_body_buffer_size keeps nginx's own window; vconv_http2_window and
# vconv_http2_window_total bound the growth.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# ~10 MB of lossless H.264 (no audio): remuxed (vcodec=copy), it costs
# the server little, so the upload's time is the link's and the window's
my $big = "$dir/big.mp4";
system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
       'testsrc2=size=640x360:rate=25:duration=22', '-c:v', 'libx264',
       '-preset', 'ultrafast', '-qp', '0', '-pix_fmt', 'yuv420p', $big) == 0
    or die "ffmpeg failed\n";
my $small = "$dir/small.mp4";
system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', $big, '-t', '5',
       '-c', 'copy', $small) == 0 or die "ffmpeg failed\n";
my $mb = (-s $big) / 1e6;
cmp_ok($mb, '>', 9, sprintf('the upload is %.1f MB', $mb));

# each location's debug log shows its window's growth
sub loc {
    my ($name, $extra) = @_;
    return "        location = /api/$name {\n"
         . "            vconv_upload /api/jobs/;\n"
         . "            client_max_body_size 1g;\n"
         . "            error_log %%PREFIX%%/$name.log debug;\n"
         . "            $extra\n"
         . "        }\n";
}

sub growth {
    my ($ng, $name) = @_;
    open my $fh, '<', $ng->prefix . "/$name.log" or return [];
    return [ map { /vconv: http2 window (\d+) -> (\d+)/ ? [$1, $2] : () }
             <$fh> ];
}

sub upload {
    my ($ng, $px, $path, $file) = @_;
    return $ng->post_file("$path?format=mp4&vcodec=copy", $file,
                          name => 'in.mp4', port => $px->port,
                          max_time => 60);
}

# h2c on the test's port; h2 over TLS (as browsers upload) beside it
my $tls_port = VconvNginx::free_port();
my ($cert, $key) = VconvNginx::tls_pair($dir);
my $ng = VconvNginx->new(http2 => 1, workers => 1,
                         server => "        listen 127.0.0.1:$tls_port ssl"
                                 . " http2;\n"
                                 . "        ssl_certificate $cert;\n"
                                 . "        ssl_certificate_key $key;\n"
                                 . loc('dbg', '')
                                 . loc('tls', '')
                                 . loc('fixed', 'client_body_buffer_size 128k;')
                                 . loc('capped', 'vconv_http2_window 1m;')
                                 . "        location /api/uploads/ {\n"
                                 . "            vconv_tus /api/jobs/;\n"
                                 . "            client_max_body_size 1g;\n"
                                 . "            error_log %%PREFIX%%/tus.log"
                                 . " debug;\n"
                                 . "        }\n")
    ->start;
my $px = VconvNginx::delay_proxy($ng->port, 25);
my $tpx = VconvNginx::delay_proxy($tls_port, 25);

# the module's defaults (location = /api/jobs, no buffer directive)
my $r = upload($ng, $px, '/api/jobs', $big);
is($r->{status}, 202, 'HTTP/2 upload through a 50 ms link -> 202');
like($r->{status_line} // '', qr{^HTTP/2}, '... over HTTP/2');
diag(sprintf('%.1f MB over HTTP/2 at 50 ms: %.2f s (%.1f MB/s), under load',
             $mb, $r->{time}, $mb / $r->{time}));
# nginx's own window (64k a round trip) takes 8 s and more here
cmp_ok($r->{time}, '<', 3,
       sprintf('%.1f MB at 50 ms round trip in under 3 s', $mb));

my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
is($job->{status}, 'done', 'the job is done');
is($job->{input} && $job->{input}{bytes}, -s $big, 'every byte arrived');
$ng->download($job->{id} // 'x', "$dir/out.mp4");
my $p = VconvNginx::probe("$dir/out.mp4");
is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{width}x"
   . "$p->{video}{height}", 'h264 640x360', 'output: h264 640x360');
ok($p && abs($p->{duration} - 22) <= 0.1, 'output: 22 s')
    or diag("duration $p->{duration}");
my $packets = `ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 '$dir/out.mp4'`;
is($packets + 0, 550, 'output: all 550 frames');

# growth, in the debug log: with the request's headers, before nginx
# opens its window (its first "read unbuffered request body"), straight
# from nginx's 64k to the whole body (under vconv_http2_window's 16m): no
# ramp of round trips (the window grew 4x-16x a round trip before)
$r = upload($ng, $px, '/api/dbg', $small);
is($r->{status}, 202, 'upload to the logged location');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
is($job->{status}, 'done', '... done');
my $g = growth($ng, 'dbg');
ok(@$g >= 1, 'the window grew (' . join(', ', map { "$_->[0] -> $_->[1]" } @$g)
   . ')');
ok($g->[0] && $g->[0][0] == 65536 && $g->[0][1] == -s $small,
   'from http2_body_preread_size to the whole body (' . (-s $small)
   . ') at once (' . ($g->[0] ? "$g->[0][0] -> $g->[0][1]" : 'none') . ')');
my @dbg = do { open my $fh, '<', $ng->prefix . '/dbg.log'; <$fh> };
my ($first_grow) = grep { $dbg[$_] =~ /vconv: http2 window/ } 0 .. $#dbg;
my ($first_read) = grep { $dbg[$_] =~ /http2 read unbuffered request body/ }
                   0 .. $#dbg;
ok(defined $first_grow && defined $first_read && $first_grow < $first_read,
   '... before nginx first opened its window (log lines '
   . ($first_grow // '?') . ' < ' . ($first_read // '?') . ')');

# the same over TLS (curl --http2 negotiates h2 with ALPN)
my $out = `curl -sS -k --http2 --max-time 60 -H 'Expect:' -X POST -T '$small' -H 'X-File-Name: in.mp4' -w '\n%{http_code} %{http_version}' 'https://127.0.0.1:${\ $tpx->port}/api/tls?format=mp4&vcodec=copy'`;
my ($json, $st) = $out =~ /^(.*)\n(\d+ \S+)$/s;
is($st, '202 2', 'h2 over TLS through the 50 ms link -> 202');
my ($id) = ($json // '') =~ /"id":"(\w+)"/;
$job = $id ? $ng->wait_job($id, 60) : {};
is($job->{status}, 'done', '... done');
is($job->{input} && $job->{input}{bytes}, -s $small, '... every byte arrived');
$g = growth($ng, 'tls');
ok(@$g >= 1, '... its window grew (' . join(', ', map { "$_->[0] -> $_->[1]" } @$g)
   . ')');

# an explicit client_body_buffer_size is the operator's window
$r = upload($ng, $px, '/api/fixed', $small);
is($r->{status}, 202, 'upload with client_body_buffer_size 128k');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
is($job->{status}, 'done', '... done');
ok(-s $ng->prefix . '/fixed.log', '... its debug log was written');
is(scalar @{ growth($ng, 'fixed') }, 0, '... and its window never grew');

# vconv_http2_window bounds the growth
$r = upload($ng, $px, '/api/capped', $small);
is($r->{status}, 202, 'upload with vconv_http2_window 1m');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
is($job->{status}, 'done', '... done');
$g = growth($ng, 'capped');
my ($max) = sort { $b <=> $a } map { $_->[1] } @$g;
is($max, 1048576, '... the window grew to 1m and no further');

# a tus PATCH (the page's uploads) grows its window the same way
use MIME::Base64 qw(encode_base64);
my $meta = join(',', map { "$_->[0] " . encode_base64($_->[1], '') }
                ['filename', 'in.mp4'], ['format', 'mp4'], ['vcodec', 'copy']);
my $hdrs = `curl -sS --http2-prior-knowledge -D - -o /dev/null -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: ${\ -s $big}' -H 'Upload-Metadata: $meta' 'http://127.0.0.1:${\ $ng->port}/api/uploads/'`;
my ($loc) = $hdrs =~ m{^Location:\s*(\S+)}mi;
ok($loc, 'tus creation -> Location') or diag($hdrs);
my ($tid) = ($loc // '') =~ m{/(\w+)$};
$out = `curl -sS --http2-prior-knowledge --max-time 60 -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' --data-binary '\@$big' -o /dev/null -w '%{http_code} %{http_version} %{time_total}' 'http://127.0.0.1:${\ $px->port}/api/uploads/${\ ($tid // 'x')}'`;
my ($code, $ver, $secs) = split ' ', $out // '';
is("${\ ($code // '')} ${\ ($ver // '')}", '204 2',
   'tus PATCH of the whole file over HTTP/2 through the 50 ms link -> 204');
cmp_ok($secs // 99, '<', 3,
       sprintf('... %.1f MB in under 3 s (%s s)', $mb, $secs // '?'));
$job = $tid ? $ng->wait_job($tid, 60) : {};
is($job->{status}, 'done', '... its job is done');
is($job->{input} && $job->{input}{bytes}, -s $big, '... every byte arrived');
$g = growth($ng, 'tus');
ok(@$g >= 1, '... its window grew (' . join(', ', map { "$_->[0] -> $_->[1]" } @$g)
   . ')');

$ng->assert_clean_log;
$px->stop;
$tpx->stop;
$ng->stop;

# vconv_http2_window_total: what all uploads of a worker may hold
$ng = VconvNginx->new(http2 => 1, workers => 1,
                      http => '    vconv_http2_window_total 512k;',
                      server => loc('dbg', ''))->start;
$px = VconvNginx::delay_proxy($ng->port, 25);
$r = upload($ng, $px, '/api/dbg', $small);
is($r->{status}, 202, 'upload with vconv_http2_window_total 512k');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 60) : {};
is($job->{status}, 'done', '... done');
$g = growth($ng, 'dbg');
($max) = sort { $b <=> $a } map { $_->[1] } @$g;
is($max, 524288, '... the window stopped at the budget');

$ng->assert_clean_log;
$px->stop;
$ng->stop;
done_testing;
