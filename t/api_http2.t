#!/usr/bin/perl
# Uploads and downloads over HTTP/2 (h2c, listen ... http2).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');

my $ng = VconvNginx->new(http2 => 1)->start;

my $r = $ng->post_file('/api/jobs?format=mp4&height=120', $mp4, name => 'h2.mp4');
is($r->{status}, 202, 'HTTP/2 raw upload -> 202');
like($r->{status_line} // '', qr{^HTTP/2}, '... over HTTP/2');
my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
is($job->{status}, 'done', 'HTTP/2 job done');
is($job->{input} && $job->{input}{bytes}, -s $mp4, 'input.bytes over HTTP/2');
$r = $ng->download($job->{id} // 'x', "$dir/h2.mp4");
is($r->{status}, 200, 'HTTP/2 download');
my $p = VconvNginx::probe("$dir/h2.mp4");
is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{width}x$p->{video}{height}",
   'h264 160x120', 'HTTP/2 output h264 160x120');
ok($p && abs($p->{duration} - 2) <= 0.1, 'duration ~2 s');

$r = $ng->post_multipart('/api/jobs', file => $mp4, filename => 'h2form.mp4',
                         fields_before => [format => 'mp4'],
                         fields_after => [height => 96]);
is($r->{status}, 202, 'HTTP/2 multipart -> 202');
$job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
is($job->{status}, 'done', 'HTTP/2 multipart job done');
$ng->download($job->{id} // 'x', "$dir/h2b.mp4");
$p = VconvNginx::probe("$dir/h2b.mp4");
is($p && $p->{video} && "$p->{video}{width}x$p->{video}{height}", '128x96',
   'HTTP/2 multipart options applied');

$r = $ng->post_file('/api/jobs?format=mp4&wait=1', $mp4, name => 'h2w.mov',
                    output => "$dir/h2w.mp4");
is($r->{status}, 200, 'HTTP/2 wait=1 -> 200');
$p = VconvNginx::probe("$dir/h2w.mp4");
is($p && $p->{video} && $p->{video}{codec_name}, 'h264', 'HTTP/2 wait=1 body is the video');

$r = $ng->get("/api/jobs/$job->{id}/output", range => '0-9');
is($r->{status}, 206, 'HTTP/2 range -> 206');
is(length $r->{body}, 10, '... 10 bytes');

# An early answer to a request whose body is still coming ends with
# RST_STREAM, which curl 7.88 reports as error 92 (even for nginx's own
# `return 400`: not the module's doing), so the refused request has an
# empty body here (END_STREAM with the headers).
open my $empty, '>', "$dir/empty.bin" or die $!;
close $empty;
$r = $ng->post_file('/api/jobs?format=bogus', "$dir/empty.bin");
VconvNginx::is_api_error($r, 400, 'unknown_format', 'HTTP/2 bad option -> 400');

$ng->assert_clean_log;
$ng->stop;
done_testing;
