#!/usr/bin/perl
# Issue 13, item 4, through the server: format=hls (and in a list) makes
# the job's hls/ folder: master.m3u8, per rung NNNp.m3u8 and one
# fragmented NNNp.mp4; served under /api/jobs/{id}/output/hls/ with the
# HLS Content-Types; ffprobe reads the ladder over HTTP; rungs never above
# the input; segments of ~4 s; key frames aligned; DELETE removes it all.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $clip = "$dir/in.mp4";
system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
       'testsrc2=size=640x480:rate=25:duration=10', '-f', 'lavfi', '-i',
       'sine=frequency=440:duration=10', '-c:v', 'libx264', '-preset',
       'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
       $clip) == 0 or die 'ffmpeg failed';

sub keys_of {
    my ($f) = @_;
    my @k = map { /^([\d.]+),K/ ? sprintf('%.2f', $1) : () }
        `ffprobe -v error -select_streams v -show_entries packet=pts_time,flags -of csv=p=0 '$f'`;
    return "@k";
}

for my $iso (qw(process thread)) {
    my $ng = VconvNginx->new(http => "    vconv_isolation $iso;\n")->start;
    my $r = $ng->post_file('/api/jobs?format=mp4,hls&height=240',
                           $clip, name => 'in.mp4');
    is($r->{status}, 202, "$iso: format=mp4,hls taken") or diag($r->{body});
    my $id = $r->{json}{id};
    my $job = $ng->wait_job($id, 180) // {};
    is($job->{status}, 'done', "$iso: done") or diag(explain($job));
    my ($hls) = grep { $_->{name} eq 'hls' } @{ $job->{outputs} // [] };
    is_deeply([ map { $_->{name} } @{ $job->{outputs} // [] } ],
              [qw(mp4 hls)], "$iso: outputs mp4 and hls");
    like($hls->{url} // '', qr{/api/jobs/\Q$id\E/output/hls/master\.m3u8$},
         "$iso: hls url is the master playlist");
    ok(-d $ng->store . "/$id/hls", "$iso: the job's hls/ folder");

    my $m = $ng->get("/api/jobs/$id/output/hls/master.m3u8");
    is($m->{status}, 200, "$iso: master served");
    is($m->{headers}{'content-type'}, 'application/vnd.apple.mpegurl',
       "$iso: master Content-Type");
    my @var = ($m->{body} // '') =~ /RESOLUTION=(\d+x\d+)\n(\S+)/g;
    is_deeply(\@var, [qw(640x480 480p.m3u8 480x360 360p.m3u8)],
              "$iso: variants 480 and 360 (none above the input; the plain"
              . ' height is not the rungs\')');

    my $url = $ng->url("/api/jobs/$id/output/hls/master.m3u8");
    my $p = `ffprobe -v error -show_entries stream=codec_name,height -of compact '$url'`;
    my %hs = map { $_ => 1 } $p =~ /codec_name=h264\|height=(\d+)/g;
    is_deeply([ sort { $a <=> $b } keys %hs ], [360, 480],
              "$iso: ffprobe reads the ladder over HTTP");

    my %keys;
    for my $rung (qw(480p 360p)) {
        my $pl = $ng->get("/api/jobs/$id/output/hls/$rung.m3u8");
        is($pl->{headers}{'content-type'}, 'application/vnd.apple.mpegurl',
           "$iso: $rung.m3u8 Content-Type");
        my @d = ($pl->{body} // '') =~ /^#EXTINF:([\d.]+),$/mg;
        is(scalar @d, 3, "$iso: $rung: 3 segments");
        ok(@d == 3 && abs($d[0] - 4) < 0.05 && abs($d[1] - 4) < 0.05
           && abs($d[0] + $d[1] + $d[2] - 10) < 0.1,
           "$iso: $rung: segments of ~4 s (@d)");
        my $f = "$dir/$iso.$rung.mp4";
        my $g = $ng->get("/api/jobs/$id/output/hls/$rung.mp4", output => $f);
        is($g->{headers}{'content-type'}, 'video/mp4',
           "$iso: $rung.mp4 Content-Type");
        my $rg = $ng->get("/api/jobs/$id/output/hls/$rung.mp4",
                          range => '0-99');
        is($rg->{status}, 206, "$iso: $rung.mp4 byte ranges (206)");
        $keys{$rung} = keys_of($f);
    }
    like($keys{'480p'}, qr/^0\.\d+ 4\.\d+ 8\.\d+$/,
         "$iso: key frames every 4 s ($keys{'480p'})");
    is($keys{'360p'}, $keys{'480p'}, "$iso: aligned across rungs");

    for my $bad (qw(1080p.m3u8 480p.ts ../input master 480p.mp4x)) {
        is($ng->get("/api/jobs/$id/output/hls/$bad")->{status}, 404,
           "$iso: hls/$bad -> 404");
    }

    is($ng->delete($id)->{status}, 204, "$iso: DELETE");
    ok(!-e $ng->store . "/$id", "$iso: ... the folder and hls/ gone");

    # hls alone, one rung
    $r = $ng->post_file('/api/jobs?format=hls&hls.heights=240', $clip,
                        name => 'in.mp4');
    $job = $ng->wait_job($r->{json}{id}, 120) // {};
    is($job->{status}, 'done', "$iso: format=hls alone");
    $m = $ng->get("/api/jobs/$r->{json}{id}/output/hls/master.m3u8");
    @var = ($m->{body} // '') =~ /RESOLUTION=(\d+x\d+)/g;
    is("@var", '320x240', "$iso: ... one rung of 240 lines");
    # hls first: "output" is the ladder, and /output its master playlist
    is($job->{output}{format}, 'hls', "$iso: ... output.format hls");
    like($job->{output}{url} // '',
         qr{/api/jobs/\Q$job->{id}\E/output/hls/master\.m3u8$},
         "$iso: ... output.url the master playlist");
    is($job->{output}{bytes}, $job->{outputs}[0]{bytes},
       "$iso: ... output.bytes as its outputs entry");
    my $o = $ng->get("/api/jobs/$job->{id}/output");
    is($o->{status}, 200, "$iso: ... /output 200");
    is($o->{body}, $m->{body}, "$iso: ... /output is master.m3u8");

    VconvNginx::is_api_error(
        $ng->post_file('/api/jobs?format=hls&hls.heights=1,2', $clip,
                       name => 'in.mp4'), 400, 'out_of_range',
        "$iso: a bad hls.heights -> 400");
    $ng->assert_clean_log;
    $ng->stop;
}

done_testing();
