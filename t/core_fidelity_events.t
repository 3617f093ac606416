#!/usr/bin/perl
# Progress moves for every output kind (issue 10): a GIF goes through a
# palette that gives nothing out before the end of the input, yet its
# event stream tells progress strictly between 0 and 1 while it runs,
# never backwards, and 1 in the job JSON when done.  The same for WebP
# (libwebp_anim holds every packet) and an audio-only output.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-fe-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $slow = VconvNginx::make_media($dir, 'slow', duration => 30,
                                  size => '640x360');
my $JSON = VconvNginx->json;

my $ng = VconvNginx->new->start;

for my $fmt (qw(gif webp)) {
    my $r = $ng->post_file("/api/jobs?format=$fmt", $slow,
                           name => 'slow.mp4');
    is($r->{status}, 202, "$fmt: upload -> 202");
    my $id = $r->{json} ? $r->{json}{id} : 'none';

    my $sse = $ng->get("/api/jobs/$id/events", async => 1, no_buffer => 1,
                       max_time => 240);
    $r = $sse->wait(250);
    is($r->{status}, 200, "$fmt: events -> 200");

    my @prog;
    for my $block (split /\r?\n\r?\n/, $r->{body} // '') {
        my ($name, $data) = ('message', '');
        for (split /\r?\n/, $block) {
            $name = $1 if /^event:\s?(.*)$/;
            $data .= $1 if /^data:\s?(.*)$/;
        }
        next unless $name eq 'progress';
        my $d = eval { $JSON->decode($data) } or next;
        push @prog, $d->{progress};
    }

    # a value the end alone gives (0.99 as the last frames are written)
    # does not count: one from the middle of the run must be there
    my @mid = grep { defined $_ && $_ > 0 && $_ < 0.9 } @prog;
    ok(@mid >= 1, "$fmt: progress strictly between 0 and 1 while it runs: "
                  . join(' ', map { $_ // 'undef' } @prog));
    my $mono = !grep { $prog[$_] < $prog[$_ - 1] } 1 .. $#prog;
    ok($mono, "$fmt: never backwards");

    my $job = $ng->wait_job($id, 240);
    is($job && $job->{status}, 'done', "$fmt: done");
    is($job && $job->{progress}, 1, "$fmt: progress 1 in the job JSON");
}

$ng->stop;
done_testing();
